package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/github"
	"github.com/deploybot/deploybot/internal/githubsim"
	"github.com/deploybot/deploybot/internal/render"
)

const (
	owner = "Codertocat"
	name  = "Hello-World"
	repo  = owner + "/" + name
	token = "ghp_simulated_job_token"
	pr    = 2
)

var t0 = time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)

// appKey is a new GitHub App private key, and its PEM (PKCS #1) as GitHub
// hands it out.
func appKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// commentsBy is the comments on the pull request that login wrote.
func (f *fixture) commentsBy(login string) []githubsim.Comment {
	var out []githubsim.Comment
	for _, c := range f.sim.Comments(repo, pr) {
		if c.User == login {
			out = append(out, c)
		}
	}
	return out
}

type fixture struct {
	sim    *githubsim.Server
	repo   *githubsim.Repo
	clock  *clock.Virtual
	client *github.Client
	events []string
	mu     sync.Mutex
}

func newFixture(t *testing.T, mod ...func(*github.Options)) *fixture {
	t.Helper()
	f := &fixture{clock: clock.NewVirtual(t0)}
	f.sim = githubsim.New(f.clock, token)
	t.Cleanup(f.sim.Close)
	f.repo = f.sim.AddRepo(owner, name, "master")
	f.sim.AddPull(repo, &githubsim.Pull{Number: pr, HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", BaseSHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", HeadRef: "changes", BaseRef: "master"})
	o := github.Options{APIURL: f.sim.URL, Auth: github.Auth{Token: token}, Clock: f.clock,
		OnEvent: func(m string) { f.mu.Lock(); f.events = append(f.events, m); f.mu.Unlock() }}
	for _, m := range mod {
		m(&o)
	}
	var err error
	if f.client, err = github.New(o); err != nil {
		t.Fatal(err)
	}
	return f
}

func body(env, fp, text string) string {
	return render.Marker(env, fp, "ec26c3e", "f95f852") + "\n" + text
}

func TestUpsertComment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		noise      int // other people's comments before ours (pagination)
		humanFake  bool
		bodies     []string
		wantEdits  int
		wantPOST   int
		wantPATCH  int
		wantCreate []bool
	}{
		{name: "create then edit", bodies: []string{body("staging", "a", "one"), body("staging", "b", "two")},
			wantEdits: 1, wantPOST: 1, wantPATCH: 1, wantCreate: []bool{true, false}},
		{name: "unchanged body makes no call", bodies: []string{body("staging", "a", "one"), body("staging", "a", "one"), body("staging", "a", "one")},
			wantEdits: 0, wantPOST: 1, wantPATCH: 0, wantCreate: []bool{true, false, false}},
		{name: "our comment on page 3 is found", noise: 250, bodies: []string{body("staging", "a", "one"), body("staging", "b", "two")},
			wantEdits: 1, wantPOST: 1, wantPATCH: 1, wantCreate: []bool{true, false}},
		{name: "a person's comment with a pasted marker is not ours", humanFake: true, bodies: []string{body("staging", "a", "one")},
			wantEdits: 0, wantPOST: 1, wantPATCH: 0, wantCreate: []bool{true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for i := 0; i < tc.noise; i++ {
				f.sim.AddComment(repo, pr, "octocat", "User", fmt.Sprintf("looks good %d", i))
			}
			if tc.humanFake {
				f.sim.AddComment(repo, pr, "mallory", "User", body("staging", "forged", "trust me"))
			}
			var created []bool
			for _, b := range tc.bodies {
				url, c, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", b)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(url, "#issuecomment-") {
					t.Errorf("url = %q", url)
				}
				created = append(created, c)
			}
			if diff := cmp.Diff(tc.wantCreate, created); diff != "" {
				t.Errorf("created (-want +got):\n%s", diff)
			}
			ours := f.commentsBy(githubsim.BotLogin)
			if len(ours) != 1 {
				t.Fatalf("bot comments = %d, want 1", len(ours))
			}
			if ours[0].Body != tc.bodies[len(tc.bodies)-1] || ours[0].Edits != tc.wantEdits {
				t.Errorf("comment edits=%d body=%q", ours[0].Edits, ours[0].Body)
			}
			if got := f.sim.CountRequests("POST", "/comments"); got != tc.wantPOST {
				t.Errorf("POST comments = %d, want %d", got, tc.wantPOST)
			}
			if got := f.sim.CountRequests("PATCH", "/comments/"); got != tc.wantPATCH {
				t.Errorf("PATCH comments = %d, want %d", got, tc.wantPATCH)
			}
		})
	}
}

func TestUpsertCommentEnvironmentsAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for _, env := range []string{"staging", "prod", "staging"} {
		if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, env, body(env, "x", env)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(f.sim.Comments(repo, pr)); got != 2 {
		t.Errorf("comments = %d, want 2", got)
	}
	if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, "prod", body("staging", "x", "wrong")); err == nil {
		t.Error("a body whose marker names another environment was accepted")
	}
}

// raceTransport lets "another run" create its comment right before ours.
type raceTransport struct {
	base http.RoundTripper
	once sync.Once
	f    func()
}

func (r *raceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/comments") {
		r.once.Do(r.f)
	}
	return r.base.RoundTrip(req)
}

func TestUpsertCommentRaceLeavesOneComment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var sim *githubsim.Server
	rt := &raceTransport{base: http.DefaultTransport}
	f := newFixture(t, func(o *github.Options) { o.Transport = rt })
	sim = f.sim
	other := body("staging", "other", "from the other run")
	rt.f = func() { sim.AddComment(repo, pr, githubsim.BotLogin, "Bot", other) }

	mine := body("staging", "mine", "from this run")
	if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", mine); err != nil {
		t.Fatal(err)
	}
	cs := sim.Comments(repo, pr)
	if len(cs) != 1 {
		t.Fatalf("comments = %d, want 1", len(cs))
	}
	if cs[0].Body != mine {
		t.Errorf("surviving body = %q, want this run's", cs[0].Body)
	}
	if sim.CountRequests("DELETE", "/comments/") != 1 {
		t.Error("the duplicate was not deleted")
	}
}

func TestUpsertCommentCutsOversizedBodyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var b strings.Builder
	b.WriteString(body("staging", "big", "<details><summary>diff</summary>\n\n```diff\n"))
	for b.Len() < 200_000 {
		b.WriteString("+ ecs_task_definition.worker container_definitions[0].environment = \"a long value\"\n")
	}
	b.WriteString("```\n</details>\n")
	if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", b.String()); err != nil {
		t.Fatal(err)
	}
	cs := f.sim.Comments(repo, pr)
	if len(cs) != 1 {
		t.Fatalf("comments = %d", len(cs))
	}
	got := cs[0].Body
	if n := utf8.RuneCountInString(got); n > githubsim.MaxBodyChars {
		t.Errorf("body has %d characters", n)
	}
	if m, ok := render.ParseMarker(got); !ok || m.Fingerprint != "big" {
		t.Errorf("marker lost: %v %v", m, ok)
	}
	if !strings.HasSuffix(got, github.CutNotice) || strings.Count(got, "```")%2 != 0 {
		t.Errorf("cut body does not end cleanly: ...%q", got[len(got)-200:])
	}
	if f.sim.CountRequests("POST", "/comments") != 2 {
		t.Errorf("POSTs = %d, want 2 (refused, then cut)", f.sim.CountRequests("POST", "/comments"))
	}
	if len(f.events) == 0 || !strings.Contains(f.events[0], "too long") {
		t.Errorf("events = %q, want a note about the cut", f.events)
	}
}

func TestRateLimitsAreWaitedOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		set      func(*githubsim.Server)
		wantErr  bool
		minWait  time.Duration
		maxTries int
	}{
		{name: "secondary 403 with retry-after", set: func(s *githubsim.Server) { s.SecondaryRateLimit(2, 403, 30*time.Second) }, minWait: 60 * time.Second},
		{name: "secondary 429 with retry-after", set: func(s *githubsim.Server) { s.SecondaryRateLimit(1, 429, 45*time.Second) }, minWait: 45 * time.Second},
		{name: "primary with x-ratelimit-reset", set: func(s *githubsim.Server) { s.PrimaryRateLimit(1, 10*time.Minute) }, minWait: 10 * time.Minute},
		{name: "content creation limit on the POST, body replayed", set: func(s *githubsim.Server) { s.ContentCreationLimit(1, time.Minute) }, minWait: time.Minute},
		{name: "bounded: gives up", set: func(s *githubsim.Server) { s.SecondaryRateLimit(20, 403, time.Second) }, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *github.Options) { o.MaxRetries = 3 })
			tc.set(f.sim)
			start := f.clock.Now()
			_, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "a", "x"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if waited := f.clock.Now().Sub(start); waited < tc.minWait {
				t.Errorf("waited %s on the clock, want at least %s", waited, tc.minWait)
			}
			if cs := f.sim.Comments(repo, pr); !tc.wantErr && (len(cs) != 1 || cs[0].Body != body("staging", "a", "x")) {
				t.Errorf("comment not created intact after the limit passed: %+v", cs)
			}
			if f.sim.RateLimited() == 0 {
				t.Error("the limit never hit")
			}
		})
	}
}

// TestCommentOfAnotherIdentity is issue 11 item 5: a comment carrying the
// marker counts only when this client's own account wrote it. Another bot's
// (another App, or the old identity after a move from GITHUB_TOKEN to an
// App) is neither the reviewed plan nor edited: a new comment is posted and
// is the one used from then on.
func TestCommentOfAnotherIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.sim.AddComment(repo, pr, "someone-else[bot]", "Bot", body("staging", "old", "written by another bot"))
	if rev, ok, _ := f.client.ReviewedFingerprint(ctx, owner, name, pr, "staging"); ok {
		t.Fatalf("another bot's marker counts as the reviewed plan: %+v", rev)
	}
	for i, b := range []string{body("staging", "b", "x"), body("staging", "c", "y"), body("staging", "c", "y")} {
		if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", b); err != nil {
			t.Fatalf("upsert %d: %v", i, err)
		}
	}
	mine := f.commentsBy(githubsim.BotLogin)
	if len(mine) != 1 || mine[0].Edits != 1 || len(f.sim.Comments(repo, pr)) != 2 {
		t.Fatalf("comments = %+v", f.sim.Comments(repo, pr))
	}
	if got := f.sim.CountRequests("PATCH", "/comments/"); got != 1 {
		t.Errorf("PATCHes = %d, want one edit of our comment and none of the other bot's", got)
	}
	rev, _, _ := f.client.ReviewedFingerprint(ctx, owner, name, pr, "staging")
	if rev.Fingerprint != "c" {
		t.Errorf("reviewed %q, want ours", rev.Fingerprint)
	}
}

// TestIdentityIsLearned: the client asks GitHub who its token is, once,
// for each kind of credential, and owns exactly that account's comments: a
// personal access token's user (a User, not a Bot), the job token's
// github-actions[bot], a GitHub App's <slug>[bot].
func TestIdentityIsLearned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, pemKey := appKey(t)
	cases := []struct {
		name string
		auth func(f *fixture) github.Auth
		want string
	}{
		{"job token", func(*fixture) github.Auth { return github.Auth{Token: token} }, githubsim.BotLogin},
		{"personal access token", func(f *fixture) github.Auth {
			f.sim.AddUserToken("ghp_alices_personal_token", "alice")
			return github.Auth{Token: "ghp_alices_personal_token"}
		}, "alice"},
		{"github app", func(f *fixture) github.Auth {
			f.sim.AddApp(42, "deploybot-sim", &key.PublicKey, 7)
			return github.Auth{AppID: 42, AppInstallationID: 7, AppPrivateKey: pemKey}
		}, "deploybot-sim[bot]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			// Someone else's comments with the marker, a person's and a bot's.
			f.sim.AddComment(repo, pr, "mallory", "User", body("staging", "forged", "trust me"))
			f.sim.AddComment(repo, pr, "other-app[bot]", "Bot", body("staging", "forged2", "trust me too"))
			client, err := github.New(github.Options{APIURL: f.sim.URL, Clock: f.clock, Auth: c.auth(f)})
			if err != nil {
				t.Fatal(err)
			}
			login, err := client.Login(ctx)
			if err != nil || login != c.want {
				t.Fatalf("Login = %q, %v; want %q", login, err, c.want)
			}
			for _, b := range []string{body("staging", "a", "one"), body("staging", "b", "two")} {
				if _, _, err := client.UpsertComment(ctx, owner, name, pr, "staging", b); err != nil {
					t.Fatal(err)
				}
			}
			mine := f.commentsBy(c.want)
			if len(mine) != 1 || mine[0].Edits != 1 || len(f.sim.Comments(repo, pr)) != 3 {
				t.Fatalf("a re-plan must edit its own comment: %+v", f.sim.Comments(repo, pr))
			}
			if rev, ok, err := client.ReviewedFingerprint(ctx, owner, name, pr, "staging"); err != nil || !ok || rev.Fingerprint != "b" {
				t.Fatalf("reviewed = %+v %v %v, want ours (b)", rev, ok, err)
			}
			if n := f.sim.CountRequests("POST", "/graphql"); n != 1 {
				t.Errorf("asked GitHub who it is %d times, want once", n)
			}
			if u := f.sim.Unexpected(); len(u) != 0 {
				t.Errorf("unexpected requests: %v", u)
			}
		})
	}
}

// TestServerErrorsAreRetried is issue 11 item 13: 5xx is retried with
// backoff, as GitHub's own clients do; 4xx is final.
func TestServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name     string
		statuses []int
		wantErr  bool
		wantWait time.Duration
	}{
		{"one 502", []int{502}, false, time.Second},
		{"502, 503, 504", []int{502, 503, 504}, false, 14 * time.Second},
		{"four 500s run out", []int{500, 500, 500, 500}, true, 14 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(o *github.Options) { o.BotLogin = githubsim.BotLogin })
			f.sim.ServerErrors(c.statuses...)
			start := f.clock.Now()
			_, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "a", "x"))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if waited := f.clock.Now().Sub(start); waited != c.wantWait {
				t.Errorf("waited %s, want %s (1s, 4s, 9s)", waited, c.wantWait)
			}
			if !c.wantErr && len(f.sim.Comments(repo, pr)) != 1 {
				t.Errorf("comments = %+v", f.sim.Comments(repo, pr))
			}
		})
	}
	// A 4xx is never retried: 404 (a wrong repository) is one request.
	f := newFixture(t, func(o *github.Options) { o.BotLogin = githubsim.BotLogin })
	if _, _, err := f.client.UpsertComment(ctx, owner, "no-such-repo", pr, "staging", body("staging", "a", "x")); err == nil {
		t.Fatal("a comment on a missing repository succeeded")
	}
	if n := len(f.sim.Requests()); n != 1 || f.clock.Now() != t0 {
		t.Errorf("a 404 made %d requests and waited %s", n, f.clock.Now().Sub(t0))
	}
}

// TestAPIURLIsUsedExactly is issue 11 item 14: GHE.com with data residency
// serves the API at https://api.SUBDOMAIN.ghe.com, without /api/v3.
func TestAPIURLIsUsedExactly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.sim.DataResidency()
	client, err := github.New(github.Options{APIURL: f.sim.URL, Clock: f.clock, Auth: github.Auth{Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "a", "x")); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.sim.Requests() {
		if strings.HasPrefix(r.Path, "/api/v3") {
			t.Errorf("request under /api/v3: %s %s", r.Method, r.Path)
		}
	}
	if u := f.sim.Unexpected(); len(u) != 0 {
		t.Errorf("unexpected requests: %v", u)
	}
}

func TestReviewedFingerprint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	if _, ok, err := f.client.ReviewedFingerprint(ctx, owner, name, pr, "staging"); err != nil || ok {
		t.Fatalf("before any comment: ok=%v err=%v", ok, err)
	}
	if _, _, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "0123456789abcdef", "x")); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.client.ReviewedFingerprint(ctx, owner, name, pr, "staging")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want := github.Reviewed{Fingerprint: "0123456789abcdef", HeadSHA: "ec26c3e", BaseSHA: "f95f852", CommentURL: got.CommentURL}
	if diff := cmp.Diff(want, got); diff != "" || got.CommentURL == "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEnterpriseAndAppAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, pemKey := appKey(t)
	f := newFixture(t)
	f.sim.AddApp(42, "deploybot-sim", &key.PublicKey, 7)
	client, err := github.New(github.Options{APIURL: f.sim.APIURL(true), Clock: f.clock,
		Auth: github.Auth{AppID: 42, AppInstallationID: 7, AppPrivateKey: pemKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "a", "x")); err != nil {
		t.Fatal(err)
	}
	cs := f.sim.Comments(repo, pr)
	if len(cs) != 1 || cs[0].User != "deploybot-sim[bot]" {
		t.Fatalf("comments = %+v", cs)
	}
	if f.sim.CountRequests("POST", "/app/installations/7/access_tokens") == 0 {
		t.Error("no installation token was minted through the GHES API root")
	}
	if _, err := github.New(github.Options{Auth: github.Auth{AppID: 42, AppInstallationID: 7, AppPrivateKey: []byte("not a key")}}); err == nil {
		t.Error("a bad private key was accepted")
	}
}

func TestChangedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	files := func(n int) []githubsim.File {
		var out []githubsim.File
		for i := 0; i < n; i++ {
			out = append(out, githubsim.File{Filename: fmt.Sprintf("src/f%04d.go", i), Status: "modified"})
		}
		return out
	}
	f.sim.AddPull(repo, &githubsim.Pull{Number: 5, Files: append(files(250), githubsim.File{Filename: "environments/staging.yaml", Status: "modified"})})
	f.sim.AddPull(repo, &githubsim.Pull{Number: 6, Files: files(3100)})
	f.sim.SetCompare(repo, "aaa", "bbb", []githubsim.File{{Filename: "environments/prod.yaml", Status: "removed"}})
	f.sim.SetCompare(repo, "ccc", "ddd", files(400))

	ch, err := f.client.PullRequestFiles(ctx, owner, name, 5)
	if err != nil || !ch.Complete || len(ch.Files) != 251 || ch.Files[250].Path != "environments/staging.yaml" {
		t.Errorf("PR 5: %d files complete=%v err=%v", len(ch.Files), ch.Complete, err)
	}
	if f.sim.CountRequests("GET", "/pulls/5/files") != 3 {
		t.Errorf("pages fetched = %d, want 3", f.sim.CountRequests("GET", "/pulls/5/files"))
	}
	if ch, err := f.client.PullRequestFiles(ctx, owner, name, 6); err != nil || ch.Complete || len(ch.Files) != 3000 {
		t.Errorf("PR 6: %d files complete=%v err=%v", len(ch.Files), ch.Complete, err)
	}
	tests := []struct {
		before, after string
		wantFiles     int
		complete      bool
	}{
		{"aaa", "bbb", 1, true},
		{"ccc", "ddd", 300, false},
		{github.ZeroSHA, "bbb", 0, false},
		{"gone", "bbb", 0, false},
	}
	for _, tc := range tests {
		ch, err := f.client.PushFiles(ctx, owner, name, tc.before, tc.after)
		if err != nil || len(ch.Files) != tc.wantFiles || ch.Complete != tc.complete || (!ch.Complete && ch.Reason == "") {
			t.Errorf("PushFiles(%s, %s) = %d files complete=%v reason=%q err=%v", tc.before, tc.after, len(ch.Files), ch.Complete, ch.Reason, err)
		}
	}
}

func TestMergedPullRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.sim.AddPull(repo, &githubsim.Pull{Number: 7, State: "closed", HeadSHA: "h7", Commits: []string{"m1"}})
	f.sim.AddPull(repo, &githubsim.Pull{Number: 8, State: "closed", Merged: true, HeadSHA: "h8", BaseSHA: "b8", MergeCommitSHA: "m1"})
	got, err := f.client.MergedPullRequest(ctx, owner, name, "m1")
	if err != nil || got == nil || got.Number != 8 || got.HeadSHA != "h8" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got, err := f.client.MergedPullRequest(ctx, owner, name, "direct-push"); err != nil || got != nil {
		t.Errorf("direct push: got %+v, %v", got, err)
	}
}

func TestDeployments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	// GitHub's defaults would answer 202 or 409 here; deploybot's explicit
	// auto_merge=false and required_contexts=[] avoid both.
	f.sim.Do(func() {
		f.repo.RefBehindDefault = true
		f.repo.FailingContexts = []string{"ci/test"}
	})
	id, err := f.client.CreateDeployment(ctx, owner, name, github.NewDeployment{Ref: "c4295bd", Environment: "staging",
		Description: strings.Repeat("long ", 60), Payload: map[string]any{"fingerprint": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{github.StateInProgress, github.StateSuccess} {
		if err := f.client.SetDeploymentStatus(ctx, owner, name, id, github.Status{State: st, LogURL: "https://github.com/run/1", EnvironmentURL: "https://app.prefect.cloud/pool"}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := f.client.DeactivateDeployments(ctx, owner, name, "staging", github.Status{Description: "destroyed", LogURL: "https://github.com/run/2"})
	if err != nil || n != 1 {
		t.Fatalf("deactivated %d, %v", n, err)
	}
	if n, _ := f.client.DeactivateDeployments(ctx, owner, name, "staging", github.Status{}); n != 0 {
		t.Errorf("second deactivation marked %d", n)
	}
	ds := f.sim.Deployments(repo)
	if len(ds) != 1 {
		t.Fatalf("deployments = %d", len(ds))
	}
	d := ds[0]
	if diff := cmp.Diff([]string{"in_progress", "success", "inactive"}, d.States()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(*d.RequiredContexts) != 0 || d.Environment != "staging" || d.TransientEnvironment {
		t.Errorf("deployment request = %+v", d)
	}
	var payload map[string]any
	if err := json.Unmarshal(d.Payload, &payload); err != nil || payload["fingerprint"] != "abc" || len(fmt.Sprint(payload[github.RequestKeyField])) != 16 ||
		d.Statuses[1].LogURL == "" || d.Statuses[1].EnvironmentURL == "" {
		t.Errorf("payload=%s statuses=%+v", d.Payload, d.Statuses)
	}
}

// TestCreatesAreDoneOnce: every POST that creates something, answered with
// a 5xx, is done exactly once, whether GitHub had done it before failing
// (then it is found, not repeated) or not (then it is repeated), and the
// caller gets what was made.
func TestCreatesAreDoneOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := []struct {
		name, path string
		setup      func(f *fixture) // what must exist first
		do         func(f *fixture) error
		count      func(f *fixture) int
	}{
		{"pull request comment", "/issues/2/comments", nil, func(f *fixture) error {
			url, created, err := f.client.UpsertComment(ctx, owner, name, pr, "staging", body("staging", "a", "x"))
			if err == nil && (url == "" || !created) {
				err = fmt.Errorf("url %q created %v", url, created)
			}
			return err
		}, func(f *fixture) int { return len(f.sim.Comments(repo, pr)) }},
		{"deployment", "/deployments", nil, func(f *fixture) error {
			id, err := f.client.CreateDeployment(ctx, owner, name, github.NewDeployment{Ref: "c4295bd", Environment: "staging"})
			if err == nil && id == 0 {
				err = errors.New("no deployment id")
			}
			return err
		}, func(f *fixture) int { return len(f.sim.Deployments(repo)) }},
		{"deployment status", "/statuses", func(f *fixture) {
			if _, err := f.client.CreateDeployment(ctx, owner, name, github.NewDeployment{Ref: "c4295bd", Environment: "staging"}); err != nil {
				t.Fatal(err)
			}
		}, func(f *fixture) error {
			return f.client.SetDeploymentStatus(ctx, owner, name, f.sim.Deployments(repo)[0].ID, github.Status{State: github.StateSuccess, Description: "applied"})
		}, func(f *fixture) int { return len(f.sim.Deployments(repo)[0].Statuses) }},
		{"drift issue", "/issues", nil, func(f *fixture) error {
			_, created, err := f.client.UpsertDriftIssue(ctx, owner, name, "staging", "Drift in staging", "2 to change")
			if err == nil && !created {
				err = errors.New("not created")
			}
			return err
		}, func(f *fixture) int { return len(f.sim.Issues(repo)) }},
		{"drift issue's closing comment", "/comments", func(f *fixture) {
			if _, _, err := f.client.UpsertDriftIssue(ctx, owner, name, "staging", "Drift in staging", "2 to change"); err != nil {
				t.Fatal(err)
			}
		}, func(f *fixture) error {
			closed, err := f.client.CloseDriftIssue(ctx, owner, name, "staging", "The drift is gone.")
			if err == nil && !closed {
				err = errors.New("not closed")
			}
			return err
		}, func(f *fixture) int { return len(f.sim.Comments(repo, f.sim.Issues(repo)[0].Number)) }},
	}
	for _, op := range ops {
		for _, written := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, written %v", op.name, written), func(t *testing.T) {
				f := newFixture(t, func(o *github.Options) { o.BotLogin = githubsim.BotLogin })
				if op.setup != nil {
					op.setup(f)
				}
				posts := f.sim.CountRequests("POST", op.path)
				if written {
					f.sim.ServerErrorsAfterWrite("POST", op.path, 502)
				} else {
					f.sim.ServerErrorsFor("POST", op.path, 502)
				}
				if err := op.do(f); err != nil {
					t.Fatal(err)
				}
				if n := op.count(f); n != 1 {
					t.Errorf("%d made, want 1", n)
				}
				// Found, the failed POST is not sent again; not found, once more.
				want := 2
				if written {
					want = 1
				}
				if n := f.sim.CountRequests("POST", op.path) - posts; n != want {
					t.Errorf("%d POSTs, want %d", n, want)
				}
				if u := f.sim.Unexpected(); len(u) != 0 {
					t.Errorf("unexpected requests: %v", u)
				}
			})
		}
	}
}

func TestDriftIssues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	url, created, err := f.client.UpsertDriftIssue(ctx, owner, name, "staging", "Drift in staging", "2 to change")
	if err != nil || !created || url == "" {
		t.Fatal(url, created, err)
	}
	if _, created, err := f.client.UpsertDriftIssue(ctx, owner, name, "staging", "Drift in staging", "3 to change"); err != nil || created {
		t.Fatal(created, err)
	}
	before := f.sim.CountRequests("PATCH", "/issues/")
	if _, _, err := f.client.UpsertDriftIssue(ctx, owner, name, "staging", "Drift in staging", "3 to change"); err != nil {
		t.Fatal(err)
	}
	if f.sim.CountRequests("PATCH", "/issues/") != before {
		t.Error("an unchanged drift issue was edited")
	}
	if closed, err := f.client.CloseDriftIssue(ctx, owner, name, "prod", "gone"); err != nil || closed {
		t.Errorf("closing prod (no issue): %v %v", closed, err)
	}
	if closed, err := f.client.CloseDriftIssue(ctx, owner, name, "staging", "The drift is gone."); err != nil || !closed {
		t.Fatalf("close: %v %v", closed, err)
	}
	is := f.sim.Issues(repo)
	if len(is) != 1 || is[0].State != "closed" || !strings.Contains(is[0].Body, "3 to change") || is[0].Labels[0] != github.DriftLabel {
		t.Errorf("issues = %+v", is)
	}
}

func TestCutBody(t *testing.T) {
	t.Parallel()
	long := func(unit string, n int) string { return strings.Repeat(unit, n) }
	tests := []struct {
		name  string
		body  string
		limit int
	}{
		{"short stays", "hello\nworld", 100},
		{"plain lines", long("line of text\n", 1000), 2000},
		{"multi-byte at the edge", "marker\n" + long("é✓😀\n", 3000), 2500},
		{"open fence and details", "marker\n<details>\n\n```diff\n" + long("+ x = 1\n", 2000), 1500},
		{"one huge line", "marker\n" + long("x", 10000), 1200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := github.CutBody(tc.body, tc.limit)
			if len(tc.body) <= tc.limit {
				if got != tc.body {
					t.Error("a body within the limit was changed")
				}
				return
			}
			if len(got) > tc.limit || !utf8.ValidString(got) {
				t.Errorf("cut to %d bytes (limit %d), valid UTF-8 %v", len(got), tc.limit, utf8.ValidString(got))
			}
			if !strings.HasSuffix(got, github.CutNotice) || strings.Count(got, "```")%2 != 0 ||
				strings.Count(got, "<details") != strings.Count(got, "</details>") {
				t.Errorf("cut body is not closed cleanly: …%q", got[max(0, len(got)-300):])
			}
		})
	}
}
