package githubsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/githubsim"
)

func get(t *testing.T, url, auth string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOIDCClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		oidc    githubsim.OIDC
		wantSub string
	}{
		{"pull request", githubsim.OIDC{EventName: "pull_request", Ref: "refs/pull/2/merge"}, "repo:Codertocat/Hello-World:pull_request"},
		{"push to main", githubsim.OIDC{EventName: "push", Ref: "refs/heads/main"}, "repo:Codertocat/Hello-World:ref:refs/heads/main"},
		{"environment wins", githubsim.OIDC{EventName: "pull_request", Environment: "prod:eu"}, "repo:Codertocat/Hello-World:environment:prod%3Aeu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := githubsim.New(clock.NewVirtual(time.Unix(1_800_000_000, 0)), "")
			defer s.Close()
			tc.oidc.RequestToken = "req-token"
			tc.oidc.Repository = "Codertocat/Hello-World"
			tc.oidc.SHA = "abc"
			tc.oidc.RunID = "99"
			s.SetOIDC(tc.oidc)
			if resp, _ := get(t, s.OIDCRequestURL()+"&audience=sts.amazonaws.com", "Bearer wrong"); resp.StatusCode != 401 {
				t.Errorf("wrong request token: %d", resp.StatusCode)
			}
			resp, b := get(t, s.OIDCRequestURL()+"&audience=sts.amazonaws.com", "Bearer req-token")
			if resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode, b)
			}
			var v struct{ Value string }
			if err := json.Unmarshal([]byte(b), &v); err != nil {
				t.Fatal(err)
			}
			c, err := githubsim.ParseToken(v.Value)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{c.Sub, c.Aud, c.Iss, c.Repository, c.SHA, c.RunID}
			want := []string{tc.wantSub, "sts.amazonaws.com", "https://token.actions.githubusercontent.com", "Codertocat/Hello-World", "abc", "99"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if c.Exp-c.Iat != 300 {
				t.Errorf("lifetime %d s, want 300", c.Exp-c.Iat)
			}
		})
	}
}

func TestCommentsPaginationAndLimit(t *testing.T) {
	t.Parallel()
	s := githubsim.New(clock.NewVirtual(time.Unix(1_800_000_000, 0)), "tok")
	defer s.Close()
	s.AddRepo("o", "r", "main")
	s.AddPull("o/r", &githubsim.Pull{Number: 1})
	for i := 0; i < 31; i++ {
		s.AddComment("o/r", 1, "u", "User", "x")
	}
	if resp, _ := get(t, s.URL+"/repos/o/r/issues/1/comments", ""); resp.StatusCode != 401 {
		t.Errorf("unauthenticated: %d", resp.StatusCode)
	}
	resp, b := get(t, s.URL+"/repos/o/r/issues/1/comments", "token tok")
	var page []map[string]any
	_ = json.Unmarshal([]byte(b), &page)
	if len(page) != 30 || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) || !strings.Contains(resp.Header.Get("Link"), "page=2") {
		t.Errorf("page 1: %d items, Link %q", len(page), resp.Header.Get("Link"))
	}
	resp, b = get(t, s.URL+"/api/v3/repos/o/r/issues/1/comments?page=2&per_page=30", "token tok")
	_ = json.Unmarshal([]byte(b), &page)
	if len(page) != 1 || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("page 2 (GHES path): %d items, Link %q", len(page), resp.Header.Get("Link"))
	}
	req, _ := http.NewRequest("POST", s.URL+"/repos/o/r/issues/1/comments", strings.NewReader(`{"body":"`+strings.Repeat("é", githubsim.MaxBodyChars+1)+`"}`))
	req.Header.Set("Authorization", "token tok")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 422 || !strings.Contains(string(b2), "body is too long (maximum is 65536 characters)") {
		t.Errorf("oversized: %d %s", r2.StatusCode, b2)
	}
}
