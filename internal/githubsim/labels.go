package githubsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// Label is a repository label.
type Label struct {
	ID          int64
	Name        string
	Color       string // 6 hex digits, no "#"
	Description string
}

// The labels API as GitHub documents it
// (https://docs.github.com/en/rest/issues/labels): a pull request is an
// issue for it; names match case-insensitively; adding a label the
// repository does not have creates it with colour ededed and no
// description (github/docs#35718); removing a label the issue does not have
// is a 404 "Label does not exist"; creating one that exists is a 422
// already_exists. Writing labels needs the token's issues: write;
// pull-requests: write is not enough (docs/research/pr-comment-bots.md §0,
// TF-via-PR#462); reading them needs issues or pull-requests read.

func (s *Server) labelJSON(r *Repo, l *Label) *gh.Label {
	out := &gh.Label{ID: gh.Int64(l.ID), NodeID: gh.String(fmt.Sprintf("LA_%d", l.ID)), Name: gh.String(l.Name), Color: gh.String(l.Color),
		Default: gh.Bool(false), URL: gh.String(fmt.Sprintf("%s/repos/%s/%s/labels/%s", s.URL, r.Owner, r.Name, l.Name))}
	if l.Description != "" {
		out.Description = gh.String(l.Description)
	}
	return out
}

// issueLabelsOf returns the label names of the issue or pull request the
// path's {number} names, or answers 404 and returns nil.
func issueLabelsOf(w http.ResponseWriter, r *http.Request, repo *Repo) *[]string {
	n, _ := strconv.Atoi(r.PathValue("number"))
	if p, ok := repo.Pulls[n]; ok {
		return &p.Labels
	}
	if i, ok := repo.Issues[n]; ok {
		return &i.Labels
	}
	notFound(w)
	return nil
}

// Who may use the labels endpoints: writing needs issues: write, reading
// issues or pull-requests read (the comment above).
var (
	labelsRead  = access{level: "read", scopes: []string{"issues", "pull-requests"}}
	labelsWrite = access{level: "write", scopes: []string{"issues"}}
)

// ensureLabel returns the repository's label name, creating it as adding
// a missing label to an issue does.
func (repo *Repo) ensureLabel(name string) *Label {
	if l, ok := repo.Labels[strings.ToLower(name)]; ok {
		return l
	}
	repo.nextLabel++
	l := &Label{ID: 208000000 + repo.nextLabel, Name: name, Color: "ededed"}
	repo.Labels[strings.ToLower(name)] = l
	return l
}

func (s *Server) issueLabels(repo *Repo, names []string) []*gh.Label {
	out := []*gh.Label{}
	for _, n := range names {
		out = append(out, s.labelJSON(repo, repo.ensureLabel(n)))
	}
	return out
}

// GET /repos/{owner}/{repo}/issues/{number}/labels (paginated).
func (s *Server) listIssueLabels(w http.ResponseWriter, r *http.Request, repo *Repo) {
	names := issueLabelsOf(w, r, repo)
	if names == nil {
		return
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, s.issueLabels(repo, *names))))
}

// POST /repos/{owner}/{repo}/issues/{number}/labels: the body is
// {"labels": ["a", ...]}, {"labels": [{"name": "a"}, ...]} or a bare
// array of names (all three are in GitHub's OpenAPI description; go-github
// sends the bare array). The answer is every label of the issue.
func (s *Server) addIssueLabels(w http.ResponseWriter, r *http.Request, repo *Repo) {
	names := issueLabelsOf(w, r, repo)
	if names == nil {
		return
	}
	b, err := io.ReadAll(r.Body)
	var add []string
	if err == nil {
		add, err = parseLabelNames(b)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	for _, name := range add {
		if missingField(w, "Label", "name", strings.TrimSpace(name)) {
			return
		}
	}
	for _, name := range add {
		l := repo.ensureLabel(name)
		have := false
		for _, x := range *names {
			have = have || strings.EqualFold(x, l.Name)
		}
		if !have {
			*names = append(*names, l.Name)
		}
	}
	writeJSON(w, http.StatusOK, s.issueLabels(repo, *names))
}

func parseLabelNames(b []byte) ([]string, error) {
	var bare []string
	if err := json.Unmarshal(b, &bare); err == nil {
		return bare, nil
	}
	var obj struct {
		Labels json.RawMessage `json:"labels"`
	}
	if err := json.Unmarshal(b, &obj); err != nil || obj.Labels == nil {
		return nil, fmt.Errorf("no labels")
	}
	var plain []string
	if err := json.Unmarshal(obj.Labels, &plain); err == nil {
		return plain, nil
	}
	var named []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(obj.Labels, &named); err != nil {
		return nil, err
	}
	var out []string
	for _, l := range named {
		out = append(out, l.Name)
	}
	return out, nil
}

// DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}: 200 with the
// labels left, or 404 "Label does not exist".
func (s *Server) removeIssueLabel(w http.ResponseWriter, r *http.Request, repo *Repo) {
	names := issueLabelsOf(w, r, repo)
	if names == nil {
		return
	}
	name := r.PathValue("name")
	for i, x := range *names {
		if strings.EqualFold(x, name) {
			*names = append((*names)[:i:i], (*names)[i+1:]...)
			writeJSON(w, http.StatusOK, s.issueLabels(repo, *names))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Label does not exist",
		"documentation_url": "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue"})
}

// GET /repos/{owner}/{repo}/labels/{name}.
func (s *Server) getLabel(w http.ResponseWriter, r *http.Request, repo *Repo) {
	l, ok := repo.Labels[strings.ToLower(r.PathValue("name"))]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.labelJSON(repo, l))
}

var hexColor = regexp.MustCompile(`^[0-9a-fA-F]{6}$`)

// POST /repos/{owner}/{repo}/labels: 201, or 422 when the name is taken
// or the colour is not 6 hex digits (a leading "#" is accepted).
func (s *Server) createLabel(w http.ResponseWriter, r *http.Request, repo *Repo) {
	var in gh.Label
	if !decode(w, r, &in) {
		return
	}
	name := strings.TrimSpace(in.GetName())
	if missingField(w, "Label", "name", name) {
		return
	}
	if _, taken := repo.Labels[strings.ToLower(name)]; taken {
		validationFailed(w, "Label", "name", "already_exists", "")
		return
	}
	color := strings.TrimPrefix(in.GetColor(), "#")
	if color == "" {
		color = "ededed"
	}
	if !hexColor.MatchString(color) {
		validationFailed(w, "Label", "color", "invalid", "")
		return
	}
	repo.nextLabel++
	l := &Label{ID: 208000000 + repo.nextLabel, Name: name, Color: strings.ToLower(color), Description: in.GetDescription()}
	repo.Labels[strings.ToLower(name)] = l
	writeJSON(w, http.StatusCreated, s.labelJSON(repo, l))
}

// PullLabels returns the label names on pull request n.
func (s *Server) PullLabels(repo string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if r == nil || r.Pulls[n] == nil {
		return nil
	}
	return append([]string(nil), r.Pulls[n].Labels...)
}

// RepoLabel returns the repository's label name, if it has it.
func (s *Server) RepoLabel(repo, name string) (Label, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(repo)]
	if r == nil {
		return Label{}, false
	}
	l, ok := r.Labels[strings.ToLower(name)]
	if !ok {
		return Label{}, false
	}
	return *l, true
}
