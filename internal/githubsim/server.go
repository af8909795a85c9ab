// Package githubsim is an httptest GitHub REST API for the endpoints deploybot
// uses: issue comments, pull request files, commit comparison, pull requests of
// a commit, deployments and their statuses, issues, GitHub App installation
// tokens, and the Actions OIDC token endpoint. It answers with GitHub's JSON
// shapes (go-github's own types), pages with Link headers, enforces the
// 65,536-character body limit with GitHub's 422, and can be switched into a
// secondary rate limit. Behaviour is modelled on
// docs/research/github-actions.md (§3.3, §4, §5) and
// docs/research/pr-comment-bots.md (§0); each handler cites what it models.
package githubsim

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/deploybot/deploybot/internal/clock"
)

// MaxBodyChars is GitHub's limit on an issue or PR comment (and issue) body:
// a longer one is refused with 422 "body is too long (maximum is 65536
// characters)" (docs/research/pr-comment-bots.md §0).
const MaxBodyChars = 65536

// MaxPullFiles is how many files the pull request files API returns at most
// (docs/research/github-actions.md §3.3: "≤3000 files").
const MaxPullFiles = 3000

// MaxCompareFiles is how many files a comparison lists at most, on its first
// page only (docs/research/github-actions.md §5.1).
const MaxCompareFiles = 300

// BotLogin is the author of everything written with the job's GITHUB_TOKEN.
const BotLogin = "github-actions[bot]"

// Request is one API request as the server saw it.
type Request struct {
	Method string
	Path   string // without the GHES /api/v3 prefix
	Query  string
	Status int
	At     time.Time
}

// Server is the simulated GitHub. Create it with New; Close it when done.
type Server struct {
	*httptest.Server

	// Clock decides "now" for timestamps and for the rate-limit window.
	Clock clock.Clock

	mu     sync.Mutex
	repos  map[string]*Repo
	log    []Request
	nextID int64

	// tokens are the accepted API tokens (GITHUB_TOKEN, PATs, minted
	// installation tokens) and whose they are.
	tokens map[string]string
	// apps are GitHub Apps by id: their public key and installations.
	apps map[int64]*app
	// permissions are a job token's `permissions:` (SetTokenPermissions);
	// a token without an entry may do everything.
	permissions map[string]map[string]string

	limit rateLimit
	oidc  OIDC

	// serverErrors answers the next matching requests with 5xx statuses.
	serverErrors []serverError
	// noV3 refuses the GHES /api/v3 prefix (GHE.com serves the API at the
	// root of api.SUBDOMAIN.ghe.com).
	noV3 bool
	// unexpected are requests no handler knows.
	unexpected []string
}

type app struct {
	key           *rsa.PublicKey
	slug          string
	installations map[int64]bool
}

// Repo is one repository's state. Tests read it through Server.Repo.
type Repo struct {
	Owner, Name   string
	DefaultBranch string

	Comments    []*Comment
	Pulls       map[int]*Pull
	Compares    map[string][]File // "base...head" → changed files
	Deployments []*Deployment
	Issues      map[int]*Issue
	// Labels are the repository's labels by lower-case name (GitHub
	// matches label names case-insensitively).
	Labels     map[string]*Label
	nextLabel  int64
	nextNumber int

	// Knobs that reproduce GitHub's surprising deployment defaults
	// (docs/research/github-actions.md §3.3 "Deployments API"): with auto_merge omitted or
	// true and the ref behind the default branch, GitHub answers 202 and
	// merges instead of deploying; with required_contexts omitted, any
	// failing commit status context is a 409.
	RefBehindDefault bool
	FailingContexts  []string
}

// Comment is an issue or pull request comment.
type Comment struct {
	ID        int64
	Issue     int
	Body      string
	User      string
	UserType  string // "Bot" or "User"
	Edits     int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Pull is a pull request.
type Pull struct {
	Number         int
	State          string // open | closed
	Merged         bool
	MergeCommitSHA string
	HeadSHA        string
	HeadRef        string
	HeadRepo       string // owner/name; differs from the base repo for a fork
	BaseSHA        string
	BaseRef        string
	Files          []File
	// Labels are the names of the labels on the pull request (a pull
	// request is an issue for the labels API).
	Labels []string
	// Commits are the SHAs that list this pull request in
	// GET /commits/{sha}/pulls (its head and, once merged, the merge commit).
	Commits []string
}

// File is one changed file, as the pulls-files and compare APIs list it.
type File struct {
	Filename         string
	Status           string // added | modified | removed | renamed
	PreviousFilename string
}

// Deployment is a GitHub Deployment with its statuses, oldest status first.
type Deployment struct {
	ID                    int64
	Ref, SHA, Task        string
	Environment           string
	Description           string
	Payload               json.RawMessage
	AutoMerge             *bool     // as sent; nil when omitted (GitHub's default is true)
	RequiredContexts      *[]string // as sent; nil when omitted (GitHub checks all contexts)
	TransientEnvironment  bool
	ProductionEnvironment bool
	Statuses              []DeploymentStatus
	CreatedAt             time.Time
}

// State is the deployment's latest status state ("" without any).
func (d *Deployment) State() string {
	if len(d.Statuses) == 0 {
		return ""
	}
	return d.Statuses[len(d.Statuses)-1].State
}

// States is the state of each of the deployment's statuses, oldest first.
func (d *Deployment) States() []string {
	var out []string
	for _, st := range d.Statuses {
		out = append(out, st.State)
	}
	return out
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	LogURL         string
	EnvironmentURL string
	// Auto is true for statuses GitHub added itself (auto_inactive).
	Auto bool
}

// Issue is a repository issue (not a pull request).
type Issue struct {
	Number      int
	Title       string
	Body        string
	State       string // open | closed
	StateReason string
	Labels      []string
	User        string
	Edits       int
}

// New starts a simulated GitHub on a local listener. token is the accepted
// GITHUB_TOKEN ("" accepts any request, authenticated or not).
func New(c clock.Clock, token string) *Server {
	s := &Server{
		Clock:  c,
		repos:  map[string]*Repo{},
		tokens: map[string]string{},
		apps:   map[int64]*app{},
		nextID: 1000,
	}
	if token != "" {
		s.tokens[token] = BotLogin
	}
	s.Server = httptest.NewServer(s.routes())
	return s
}

// Close shuts the server down. It closes the server's own listener and
// connections only: httptest.Server.Close would also close every idle
// connection of http.DefaultTransport, breaking requests that tests running
// in parallel are making to other servers on it ("http: CloseIdleConnections
// called").
func (s *Server) Close() { _ = s.Server.Config.Close() }

// APIURL is what GITHUB_API_URL would be: the server's root for github.com
// style, or ROOT/api/v3 for GitHub Enterprise Server style (both are served).
func (s *Server) APIURL(ghes bool) string {
	if ghes {
		return s.URL + "/api/v3"
	}
	return s.URL
}

// SetTokenPermissions limits token to a job's `permissions:` (scope →
// "read" | "write"; a scope left out is "none", as GitHub does once a job
// lists any: docs/research/github-actions.md §6). The labels endpoints
// check them; the others do not model permissions.
func (s *Server) SetTokenPermissions(token string, perms map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.permissions == nil {
		s.permissions = map[string]map[string]string{}
	}
	s.permissions[token] = perms
}

// access is what a route needs of the job token: one of scopes at level.
type access struct {
	level  string
	scopes []string
}

// needs wraps h so that a token without the access gets GitHub's 403,
// whose documentation_url is the route's doc.
func (s *Server) needs(a access, doc string, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		if !s.allowed(r, a.level, a.scopes...) {
			forbidden(w, doc)
			return
		}
		h(w, r, repo)
	}
}

// allowed says whether the request's token has scope at level (write
// implies read). s.mu held.
func (s *Server) allowed(r *http.Request, level string, scopes ...string) bool {
	a := r.Header.Get("Authorization")
	i := strings.IndexByte(a, ' ')
	if i < 0 {
		return true
	}
	perms, limited := s.permissions[a[i+1:]]
	if !limited {
		return true
	}
	for _, sc := range scopes {
		if p := perms[sc]; p == "write" || (p == "read" && level == "read") {
			return true
		}
	}
	return false
}

// forbidden is GitHub's answer to a GITHUB_TOKEN without the permission.
func forbidden(w http.ResponseWriter, doc string) {
	writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration", "documentation_url": doc})
}

// AddUserToken accepts token as a person's personal access token: what it
// writes is authored by login, a User.
func (s *Server) AddUserToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
}

type serverError struct {
	method, pathPart string
	status           int
	// afterWrite: the request is carried out, then answered with status.
	afterWrite bool
}

// ServerErrors makes the next requests answer these statuses (502, 503...)
// with GitHub's JSON error, one request per status.
func (s *Server) ServerErrors(statuses ...int) { s.ServerErrorsFor("", "", statuses...) }

// ServerErrorsFor is ServerErrors for requests with this method ("" any)
// whose path contains pathPart.
func (s *Server) ServerErrorsFor(method, pathPart string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range statuses {
		s.serverErrors = append(s.serverErrors, serverError{method: method, pathPart: pathPart, status: st})
	}
}

// ServerErrorsAfterWrite is ServerErrorsFor where GitHub did the request
// before it failed: the write is made (a comment, a deployment exists) and
// the client still gets the 5xx. GitHub stops a request that takes more than
// 10 seconds and answers a timeout with "Server Error"
// (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#timeouts,
// docs/research/github-actions.md §3.3), and does not say whether the write
// was done by then: a client cannot tell this from a request never served.
func (s *Server) ServerErrorsAfterWrite(method, pathPart string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range statuses {
		s.serverErrors = append(s.serverErrors, serverError{method: method, pathPart: pathPart, status: st, afterWrite: true})
	}
}

// DataResidency makes the server behave as GitHub Enterprise Cloud with
// data residency: the REST API lives at the root of api.SUBDOMAIN.ghe.com
// and there is no /api/v3 (https://docs.github.com/en/enterprise-cloud@latest/admin/data-residency/network-details-for-ghecom).
// A request under /api/v3 is unexpected.
func (s *Server) DataResidency() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noV3 = true
}

// Unexpected returns the requests no handler of the simulator knows: a test
// that sees any has called GitHub in a way deploybot should not.
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unexpected...)
}

// AddRepo creates a repository and returns it.
func (s *Server) AddRepo(owner, name, defaultBranch string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repo{Owner: owner, Name: name, DefaultBranch: defaultBranch,
		Pulls: map[int]*Pull{}, Compares: map[string][]File{}, Issues: map[int]*Issue{}, Labels: map[string]*Label{}, nextNumber: 1}
	s.repos[strings.ToLower(owner+"/"+name)] = r
	return r
}

// Do runs f with the server's state locked, so a test can read or change a
// repository consistently (e.g. add a pull request, read comments).
func (s *Server) Do(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// AddPull registers a pull request; its number also takes a slot in the
// repository's issue numbers, as on GitHub.
func (s *Server) AddPull(repo string, p *Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if p.State == "" {
		p.State = "open"
	}
	r.Pulls[p.Number] = p
	if p.Number >= r.nextNumber {
		r.nextNumber = p.Number + 1
	}
}

// SetCompare sets the files that GET /compare/base...head lists.
func (s *Server) SetCompare(repo, base, head string, files []File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(repo)].Compares[base+"..."+head] = files
}

// AddComment posts a comment as someone else (a person, another bot).
func (s *Server) AddComment(repo string, issue int, user, userType, body string) *Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(s.repos[strings.ToLower(repo)], issue, user, userType, body)
}

func (s *Server) addComment(r *Repo, issue int, user, userType, body string) *Comment {
	s.nextID++
	now := s.Clock.Now()
	c := &Comment{ID: s.nextID, Issue: issue, Body: body, User: user, UserType: userType, CreatedAt: now, UpdatedAt: now}
	r.Comments = append(r.Comments, c)
	return c
}

// Comments returns copies of the comments on one issue or pull request, oldest first.
func (s *Server) Comments(repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.repos[strings.ToLower(repo)].Comments {
		if c.Issue == issue {
			out = append(out, *c)
		}
	}
	return out
}

// Deployments returns copies of the repository's deployments, oldest first.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.repos[strings.ToLower(repo)].Deployments {
		c := *d
		c.Statuses = append([]DeploymentStatus(nil), d.Statuses...)
		out = append(out, c)
	}
	return out
}

// Issues returns copies of the repository's issues by number.
func (s *Server) Issues(repo string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, i := range s.repos[strings.ToLower(repo)].Issues {
		out = append(out, *i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Number < out[b].Number })
	return out
}

// Requests returns the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// CountRequests counts logged requests with this method whose path contains part.
func (s *Server) CountRequests(method, part string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// rateLimit models GitHub's secondary rate limit (docs/research/github-actions.md §3.3:
// "Primary or secondary limits answer 403 or 429"; "obey retry-after").
type rateLimit struct {
	remaining  int           // how many more requests get limited
	retryAfter time.Duration // the retry-after the server announces
	status     int           // 403 or 429
	useReset   bool          // announce x-ratelimit-reset instead of retry-after
	until      time.Time     // requests before this are refused again
	hits       int
	method     string // "" limits every request; "POST" only content creation
}

// SecondaryRateLimit makes the next n requests answer status (403 or 429)
// with a retry-after of d. A request that arrives before the announced time
// has passed on the server's clock is refused again, as GitHub does, so a
// client must really wait.
func (s *Server) SecondaryRateLimit(n int, status int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = rateLimit{remaining: n, retryAfter: d, status: status}
}

// ContentCreationLimit makes the next n POST requests answer 403 with a
// retry-after of d: the secondary limit on creating content, 80 a minute
// (docs/research/github-actions.md §3.3), which CreateComment's docs warn about.
func (s *Server) ContentCreationLimit(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = rateLimit{remaining: n, retryAfter: d, status: http.StatusForbidden, method: http.MethodPost}
}

// PrimaryRateLimit makes the next n requests answer 403 with
// x-ratelimit-remaining: 0 and x-ratelimit-reset d from now.
func (s *Server) PrimaryRateLimit(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = rateLimit{remaining: n, retryAfter: d, status: http.StatusForbidden, useReset: true}
}

// RateLimited returns how many requests were answered with a rate limit.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit.hits
}

// limited answers a rate-limited request and reports whether it did. s.mu held.
func (s *Server) limited(w http.ResponseWriter, method string) bool {
	now := s.Clock.Now()
	l := &s.limit
	if l.remaining <= 0 && !now.Before(l.until) {
		return false
	}
	if l.method != "" && l.method != method {
		return false
	}
	if l.remaining > 0 {
		l.remaining--
		l.until = now.Add(l.retryAfter)
	}
	l.hits++
	wait := l.until.Sub(now)
	secs := int((wait + time.Second - 1) / time.Second)
	if l.useReset {
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(l.until.Unix(), 10))
		writeJSON(w, l.status, map[string]string{
			"message":           "API rate limit exceeded for installation ID 1.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
		})
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, l.status, map[string]string{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
	})
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type handler func(w http.ResponseWriter, r *http.Request, repo *Repo)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	repoRoute := func(pattern string, h handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			repo := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
			if repo == nil {
				notFound(w)
				return
			}
			h(w, r, repo)
		})
	}
	repoRoute("GET /repos/{owner}/{repo}/issues/{number}/comments", s.listComments)
	repoRoute("POST /repos/{owner}/{repo}/issues/{number}/comments", s.createComment)
	repoRoute("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.editComment)
	repoRoute("DELETE /repos/{owner}/{repo}/issues/comments/{id}", s.deleteComment)
	repoRoute("GET /repos/{owner}/{repo}/pulls/{number}", s.getPull)
	repoRoute("GET /repos/{owner}/{repo}/pulls/{number}/files", s.listPullFiles)
	repoRoute("GET /repos/{owner}/{repo}/compare/{basehead}", s.compare)
	repoRoute("GET /repos/{owner}/{repo}/commits/{sha}/pulls", s.pullsForCommit)
	repoRoute("POST /repos/{owner}/{repo}/deployments", s.createDeployment)
	repoRoute("GET /repos/{owner}/{repo}/deployments", s.listDeployments)
	repoRoute("POST /repos/{owner}/{repo}/deployments/{id}/statuses", s.createDeploymentStatus)
	repoRoute("GET /repos/{owner}/{repo}/deployments/{id}/statuses", s.listDeploymentStatuses)
	repoRoute("POST /repos/{owner}/{repo}/issues", s.createIssue)
	repoRoute("PATCH /repos/{owner}/{repo}/issues/{number}", s.editIssue)
	repoRoute("GET /repos/{owner}/{repo}/issues", s.listIssues)
	repoRoute("GET /repos/{owner}/{repo}/issues/{number}/labels",
		s.needs(labelsRead, "https://docs.github.com/rest/issues/labels#list-labels-for-an-issue", s.listIssueLabels))
	repoRoute("POST /repos/{owner}/{repo}/issues/{number}/labels",
		s.needs(labelsWrite, "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue", s.addIssueLabels))
	repoRoute("DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}",
		s.needs(labelsWrite, "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue", s.removeIssueLabel))
	repoRoute("GET /repos/{owner}/{repo}/labels/{name}",
		s.needs(labelsRead, "https://docs.github.com/rest/issues/labels#get-a-label", s.getLabel))
	repoRoute("POST /repos/{owner}/{repo}/labels",
		s.needs(labelsWrite, "https://docs.github.com/rest/issues/labels#create-a-label", s.createLabel))
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.installationToken)
	mux.HandleFunc("POST /graphql", s.graphql)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// An unexpected call is a test failure, not a quiet 404.
		s.unexpected = append(s.unexpected, r.Method+" "+r.URL.Path)
		notFound(w)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == oidcPath {
			s.serveOIDC(w, r)
			return
		}
		// GitHub Enterprise Server serves the same API under /api/v3, and
		// GraphQL at /api/graphql (docs/research/github-actions.md §1.5,
		// §3.1); GHE.com with data residency has neither prefix.
		s.mu.Lock()
		noV3 := s.noV3
		s.mu.Unlock()
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && !noV3 {
			r.URL.Path = p
			r.URL.RawPath = ""
		} else if r.URL.Path == "/api/graphql" && !noV3 {
			r.URL.Path = "/graphql"
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.mu.Lock()
		defer s.mu.Unlock()
		defer func() {
			s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status, At: s.Clock.Now()})
		}()
		if !strings.HasPrefix(r.URL.Path, "/app/") && !s.authorized(r) {
			writeJSON(rec, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		if s.limited(rec, r.Method) {
			return
		}
		if len(s.serverErrors) > 0 {
			if e := s.serverErrors[0]; (e.method == "" || e.method == r.Method) && strings.Contains(r.URL.Path, e.pathPart) {
				s.serverErrors = s.serverErrors[1:]
				if e.afterWrite {
					mux.ServeHTTP(httptest.NewRecorder(), r) // done, and the answer lost
				}
				// What GitHub's front end answers when a backend is down.
				writeJSON(rec, e.status, map[string]string{"message": "Server Error"})
				return
			}
		}
		mux.ServeHTTP(rec, r)
	})
}

// authorized checks "Authorization: token X" / "Bearer X". s.mu held.
func (s *Server) authorized(r *http.Request) bool {
	if len(s.tokens) == 0 && len(s.apps) == 0 {
		return true
	}
	a := r.Header.Get("Authorization")
	for _, p := range []string{"token ", "Bearer ", "bearer "} {
		if t, ok := strings.CutPrefix(a, p); ok {
			_, known := s.tokens[t]
			return known
		}
	}
	return false
}

// author is who the request's token belongs to. s.mu held.
func (s *Server) author(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if i := strings.IndexByte(a, ' '); i > 0 {
		if who, ok := s.tokens[a[i+1:]]; ok {
			return who
		}
	}
	return BotLogin
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

// missingField answers GitHub's 422 missing_field when a required field's
// value is empty, and says whether it did.
func missingField(w http.ResponseWriter, resource, field, value string) bool {
	if value != "" {
		return false
	}
	validationFailed(w, resource, field, "missing_field", field+" is missing")
	return true
}

// numbered finds the issue or pull request of m that the path's {number}
// names, or answers 404 and returns nil.
func numbered[T any](w http.ResponseWriter, r *http.Request, m map[int]*T) *T {
	n, _ := strconv.Atoi(r.PathValue("number"))
	v := m[n]
	if v == nil {
		notFound(w)
	}
	return v
}

// validationFailed is GitHub's 422 shape.
func validationFailed(w http.ResponseWriter, resource, field, code, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed",
		"errors": []map[string]string{{
			"resource": resource, "code": code, "field": field, "message": msg,
		}},
		"documentation_url": "https://docs.github.com/rest",
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return false
	}
	return true
}

// paginate cuts items to the requested page and sets the Link header the
// way GitHub does: per_page defaults to 30 and is at most 100; next/last
// links are absent on the last page.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	q := r.URL.Query()
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	last := max((len(items)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = qq.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo := min((page-1)*perPage, len(items))
	hi := min(lo+perPage, len(items))
	return items[lo:hi]
}

func ts(t time.Time) *gh.Timestamp { return &gh.Timestamp{Time: t} }
