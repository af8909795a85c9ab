package githubsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/githubsim"
)

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "token tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func names(t *testing.T, body string) []string {
	t.Helper()
	var ls []struct {
		Name, Color string
	}
	if err := json.Unmarshal([]byte(body), &ls); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Name+"#"+l.Color)
	}
	return out
}

// The labels endpoints behave as https://docs.github.com/en/rest/issues/labels
// describes them, including what the page leaves unsaid (github/docs#35718).
func TestLabelsLikeGitHub(t *testing.T) {
	s := githubsim.New(clock.NewVirtual(time.Unix(1_800_000_000, 0)), "tok")
	defer s.Close()
	s.AddRepo("o", "r", "main")
	s.AddPull("o/r", &githubsim.Pull{Number: 1})
	base := s.URL + "/repos/o/r"

	if code, b := call(t, "GET", base+"/issues/1/labels", ""); code != 200 || b != "[]\n" {
		t.Errorf("no labels: %d %s", code, b)
	}
	// Created with a colour, then added; an unknown label is created grey.
	if code, b := call(t, "POST", base+"/labels", `{"name":"deploybot:destroy","color":"#D93F0B","description":"d"}`); code != 201 || !strings.Contains(b, `"color":"d93f0b"`) {
		t.Errorf("create: %d %s", code, b)
	}
	if code, b := call(t, "POST", base+"/labels", `{"name":"DEPLOYBOT:destroy","color":"ffffff"}`); code != 422 || !strings.Contains(b, "already_exists") {
		t.Errorf("create a taken name: %d %s", code, b)
	}
	if code, b := call(t, "POST", base+"/labels", `{"name":"x","color":"red"}`); code != 422 {
		t.Errorf("a colour that is not hex: %d %s", code, b)
	}
	code, b := call(t, "POST", base+"/issues/1/labels", `["Deploybot:Destroy","triage"]`)
	if got := strings.Join(names(t, b), ","); code != 200 || got != "deploybot:destroy#d93f0b,triage#ededed" {
		t.Errorf("add (bare array): %d %s", code, got)
	}
	code, b = call(t, "POST", base+"/issues/1/labels", `{"labels":[{"name":"triage"},{"name":"team"}]}`)
	if got := strings.Join(names(t, b), ","); code != 200 || got != "deploybot:destroy#d93f0b,triage#ededed,team#ededed" {
		t.Errorf("add (objects): %d %s", code, got)
	}
	if code, b := call(t, "GET", base+"/labels/TRIAGE", ""); code != 200 || !strings.Contains(b, `"name":"triage"`) {
		t.Errorf("get, case-insensitive: %d %s", code, b)
	}
	if code, _ := call(t, "GET", base+"/labels/nope", ""); code != 404 {
		t.Errorf("get a missing label: %d", code)
	}
	code, b = call(t, "DELETE", base+"/issues/1/labels/triage", "")
	if got := strings.Join(names(t, b), ","); code != 200 || got != "deploybot:destroy#d93f0b,team#ededed" {
		t.Errorf("remove: %d %s", code, got)
	}
	if code, b := call(t, "DELETE", base+"/issues/1/labels/triage", ""); code != 404 || !strings.Contains(b, "Label does not exist") {
		t.Errorf("remove again: %d %s", code, b)
	}
	if code, _ := call(t, "GET", base+"/issues/99/labels", ""); code != 404 {
		t.Errorf("labels of a missing issue: %d", code)
	}
	if code, _ := call(t, "POST", base+"/issues/1/labels", `{"nope":1}`); code != 400 {
		t.Errorf("a body without labels: %d", code)
	}
	if got := s.PullLabels("o/r", 1); strings.Join(got, ",") != "deploybot:destroy,team" {
		t.Errorf("PullLabels = %v", got)
	}
}

// A job token with pull-requests: write but not issues: write reads labels
// and cannot write them.
func TestLabelWritesNeedIssuesWrite(t *testing.T) {
	s := githubsim.New(clock.NewVirtual(time.Unix(1_800_000_000, 0)), "tok")
	defer s.Close()
	s.AddRepo("o", "r", "main")
	s.AddPull("o/r", &githubsim.Pull{Number: 1})
	s.SetTokenPermissions("tok", map[string]string{"pull-requests": "write", "contents": "read"})
	base := s.URL + "/repos/o/r"
	if code, _ := call(t, "GET", base+"/issues/1/labels", ""); code != 200 {
		t.Errorf("read with pull-requests: write: %d", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/issues/1/labels", `["x"]`},
		{"DELETE", "/issues/1/labels/x", ""},
		{"POST", "/labels", `{"name":"x"}`},
	} {
		if code, b := call(t, c.method, base+c.path, c.body); code != 403 || !strings.Contains(b, "Resource not accessible by integration") {
			t.Errorf("%s %s without issues: write: %d %s", c.method, c.path, code, b)
		}
	}
	s.SetTokenPermissions("tok", map[string]string{"issues": "write"})
	if code, _ := call(t, "POST", base+"/issues/1/labels", `["x"]`); code != 200 {
		t.Errorf("with issues: write: %d", code)
	}
}
