package demo

import (
	"fmt"
	"net/http"
	"net/http/httptest"
)

// inProcess is an http.RoundTripper that serves each request with the
// simulated server's handler for its host, in this process: the demo opens
// no connection at all, so it runs where even loopback is unavailable. A
// request to any other host fails, which proves the demo reaches nothing
// outside.
type inProcess map[string]http.Handler // host:port → handler

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	h, ok := t[req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("deploybot demo: %s %s would leave the simulation", req.Method, req.URL.Redacted())
	}
	// The server side of the request, as net/http would hand it to the handler.
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, in)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
