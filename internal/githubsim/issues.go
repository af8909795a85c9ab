package githubsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

func (s *Server) issueJSON(r *Repo, i *Issue) *gh.Issue {
	var labels []*gh.Label
	for _, l := range i.Labels {
		labels = append(labels, &gh.Label{Name: gh.String(l)})
	}
	out := &gh.Issue{Number: gh.Int(i.Number), Title: gh.String(i.Title), Body: gh.String(i.Body), State: gh.String(i.State),
		Labels: labels, User: &gh.User{Login: gh.String(i.User), Type: gh.String(userType(i.User))},
		HTMLURL: gh.String(fmt.Sprintf("https://github.com/%s/%s/issues/%d", r.Owner, r.Name, i.Number)),
		URL:     gh.String(fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, r.Owner, r.Name, i.Number))}
	if i.StateReason != "" {
		out.StateReason = gh.String(i.StateReason)
	}
	return out
}

// POST /repos/{owner}/{repo}/issues. Issues and pull requests share one
// number sequence.
func (s *Server) createIssue(w http.ResponseWriter, r *http.Request, repo *Repo) {
	var in gh.IssueRequest
	if !decode(w, r, &in) {
		return
	}
	if missingField(w, "Issue", "title", in.GetTitle()) {
		return
	}
	if bodyTooLong(w, "Issue", in.GetBody()) {
		return
	}
	i := &Issue{Number: repo.nextNumber, Title: in.GetTitle(), Body: in.GetBody(), State: "open", User: s.author(r)}
	if in.Labels != nil {
		i.Labels = nil
		for _, name := range *in.Labels {
			i.Labels = append(i.Labels, repo.ensureLabel(name).Name)
		}
	}
	repo.nextNumber++
	repo.Issues[i.Number] = i
	writeJSON(w, http.StatusCreated, s.issueJSON(repo, i))
}

// PATCH /repos/{owner}/{repo}/issues/{number}.
func (s *Server) editIssue(w http.ResponseWriter, r *http.Request, repo *Repo) {
	i := numbered(w, r, repo.Issues)
	if i == nil {
		return
	}
	var in gh.IssueRequest
	if !decode(w, r, &in) {
		return
	}
	if in.Body != nil && bodyTooLong(w, "Issue", *in.Body) {
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		validationFailed(w, "Issue", "state", "invalid", "state is not included in the list")
		return
	}
	if in.Title != nil {
		i.Title = *in.Title
	}
	if in.Body != nil {
		i.Body = *in.Body
	}
	if in.State != nil {
		i.State = *in.State
		i.StateReason = ""
		if in.StateReason != nil {
			i.StateReason = *in.StateReason
		}
	}
	if in.Labels != nil {
		i.Labels = nil
		for _, name := range *in.Labels {
			i.Labels = append(i.Labels, repo.ensureLabel(name).Name)
		}
	}
	i.Edits++
	writeJSON(w, http.StatusOK, s.issueJSON(repo, i))
}

// GET /repos/{owner}/{repo}/issues?state=&labels=: newest first; state
// defaults to open; labels is a comma list that must all match.
func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, repo *Repo) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	var out []*gh.Issue
	for n := repo.nextNumber - 1; n >= 1; n-- {
		i := repo.Issues[n]
		if i == nil || (state != "all" && i.State != state) {
			continue
		}
		ok := true
		for _, l := range want {
			if !slices.Contains(i.Labels, l) {
				ok = false
			}
		}
		if ok {
			out = append(out, s.issueJSON(repo, i))
		}
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, out)))
}
