package githubsim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// oidcPath mirrors the shape of the runner's ACTIONS_ID_TOKEN_REQUEST_URL.
const oidcPath = "/_apis/distributedtask/hubs/Actions/plans/sim-plan/jobs/sim-job/idtoken"

// OIDC describes the job the fake token endpoint issues tokens for
// (docs/research/github-actions.md §2.1, §2.2).
type OIDC struct {
	// RequestToken is ACTIONS_ID_TOKEN_REQUEST_TOKEN; requests must carry it
	// as "Authorization: Bearer <token>".
	RequestToken string
	Repository   string // owner/name
	Ref          string // refs/heads/main, refs/pull/2/merge
	SHA          string
	EventName    string // pull_request, push, workflow_dispatch, schedule
	// Environment is the job's `environment:`; it wins in `sub`.
	Environment string
	RunID       string
	Actor       string
	Workflow    string
	HeadRef     string
	BaseRef     string
	// Issuer defaults to https://token.actions.githubusercontent.com.
	Issuer string
	// FailNext makes the next N token requests answer 500.
	FailNext int
	// NoIDTokenPermission: the request token is the job's, but the job's
	// `permissions:` do not grant `id-token: write`, so GitHub will not
	// issue an ID token (docs/research/github-actions.md §2.1: "You won't be
	// able to request the OIDC JWT ID token if the permissions setting for
	// id-token is set to read or none"). The docs give no status code; the
	// endpoint is modelled as refusing an authenticated request, 403.
	NoIDTokenPermission bool
}

// Claims are the claims GitHub puts in an Actions ID token (oidc.md via
// docs/research/github-actions.md §2.2).
type Claims struct {
	Iss               string `json:"iss"`
	Sub               string `json:"sub"`
	Aud               string `json:"aud"`
	Exp               int64  `json:"exp"`
	Iat               int64  `json:"iat"`
	Nbf               int64  `json:"nbf"`
	Jti               string `json:"jti"`
	Actor             string `json:"actor,omitempty"`
	BaseRef           string `json:"base_ref"`
	HeadRef           string `json:"head_ref"`
	Environment       string `json:"environment,omitempty"`
	EventName         string `json:"event_name"`
	Ref               string `json:"ref"`
	RefType           string `json:"ref_type"`
	Repository        string `json:"repository"`
	RepositoryOwner   string `json:"repository_owner"`
	RunID             string `json:"run_id"`
	RunNumber         string `json:"run_number"`
	RunAttempt        string `json:"run_attempt"`
	RunnerEnvironment string `json:"runner_environment"`
	Workflow          string `json:"workflow"`
	WorkflowRef       string `json:"workflow_ref"`
	JobWorkflowRef    string `json:"job_workflow_ref"`
	SHA               string `json:"sha"`
}

// SetOIDC configures the token endpoint.
func (s *Server) SetOIDC(o OIDC) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidc = o
}

// OIDCRequestURL is ACTIONS_ID_TOKEN_REQUEST_URL (with the api-version
// query the runner puts there; a client adds &audience=...).
func (s *Server) OIDCRequestURL() string { return s.URL + oidcPath + "?api-version=2.0" }

// subject follows the precedence of docs/research/github-actions.md §2.2: an environment
// wins, then pull_request, then the ref. ":" inside a value is %3A.
func subject(o OIDC) string {
	esc := func(v string) string { return strings.ReplaceAll(v, ":", "%3A") }
	switch {
	case o.Environment != "":
		return "repo:" + o.Repository + ":environment:" + esc(o.Environment)
	case o.EventName == "pull_request":
		return "repo:" + o.Repository + ":pull_request"
	default:
		return "repo:" + o.Repository + ":ref:" + esc(o.Ref)
	}
}

func (s *Server) serveOIDC(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: now})
	o := &s.oidc
	if r.Header.Get("Authorization") != "Bearer "+o.RequestToken || o.RequestToken == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return
	}
	if o.NoIDTokenPermission {
		s.log[len(s.log)-1].Status = http.StatusForbidden
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Forbidden"})
		return
	}
	if o.FailNext > 0 {
		o.FailNext--
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "Internal Server Error"})
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		aud = "https://github.com/" + strings.Split(o.Repository, "/")[0]
	}
	iss := o.Issuer
	if iss == "" {
		iss = "https://token.actions.githubusercontent.com"
	}
	refType := "branch"
	if strings.HasPrefix(o.Ref, "refs/tags/") {
		refType = "tag"
	}
	owner, _, _ := strings.Cut(o.Repository, "/")
	wf := o.Repository + "/.github/workflows/deploybot.yml@" + o.Ref
	s.nextID++
	c := Claims{Iss: iss, Sub: subject(*o), Aud: aud, Iat: now.Unix(), Nbf: now.Add(-5 * time.Second).Unix(),
		Exp: now.Add(5 * time.Minute).Unix(), Jti: fmt.Sprintf("sim-%d", s.nextID), Actor: o.Actor,
		BaseRef: o.BaseRef, HeadRef: o.HeadRef, Environment: o.Environment, EventName: o.EventName, Ref: o.Ref, RefType: refType,
		Repository: o.Repository, RepositoryOwner: owner, RunID: o.RunID, RunNumber: "1", RunAttempt: "1",
		RunnerEnvironment: "github-hosted", Workflow: o.Workflow, WorkflowRef: wf, JobWorkflowRef: wf, SHA: o.SHA}
	s.log[len(s.log)-1].Status = http.StatusOK
	writeJSON(w, http.StatusOK, map[string]string{"value": encodeJWT(c)})
}

func encodeJWT(c Claims) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "githubsim"})
	p, _ := json.Marshal(c)
	// Well-formed but not a real signature: nothing here verifies it.
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte("githubsim-unsigned"))
}

// ParseToken decodes the claims of a token the fake endpoint issued (the
// signature is not checked: it is not a real one).
func ParseToken(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("githubsim: token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("githubsim: token payload: %w", err)
	}
	var c Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return Claims{}, fmt.Errorf("githubsim: token claims: %w", err)
	}
	return c, nil
}
