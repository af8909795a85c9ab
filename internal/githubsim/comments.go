package githubsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

func (s *Server) commentJSON(r *Repo, c *Comment) *gh.IssueComment {
	url := fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", s.URL, r.Owner, r.Name, c.ID)
	html := fmt.Sprintf("https://github.com/%s/%s/pull/%d#issuecomment-%d", r.Owner, r.Name, c.Issue, c.ID)
	issueURL := fmt.Sprintf("%s/repos/%s/%s/issues/%d", s.URL, r.Owner, r.Name, c.Issue)
	return &gh.IssueComment{
		ID: gh.Int64(c.ID), NodeID: gh.String(fmt.Sprintf("IC_%d", c.ID)), Body: gh.String(c.Body),
		User:      &gh.User{Login: gh.String(c.User), Type: gh.String(c.UserType)},
		CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt),
		AuthorAssociation: gh.String("NONE"),
		URL:               gh.String(url), HTMLURL: gh.String(html), IssueURL: gh.String(issueURL),
	}
}

// bodyTooLong is GitHub's answer to a body over 65,536 characters
// (docs/research/pr-comment-bots.md §0: "422 … body is too long (maximum is 65536
// characters)"). GitHub counts characters, not bytes.
func bodyTooLong(w http.ResponseWriter, resource, body string) bool {
	if utf8.RuneCountInString(body) <= MaxBodyChars {
		return false
	}
	validationFailed(w, resource, "body", "custom", fmt.Sprintf("body is too long (maximum is %d characters)", MaxBodyChars))
	return true
}

// GET /repos/{owner}/{repo}/issues/{number}/comments: oldest first, paginated.
func (s *Server) listComments(w http.ResponseWriter, r *http.Request, repo *Repo) {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || !repo.hasIssue(n) {
		notFound(w)
		return
	}
	var all []*gh.IssueComment
	for _, c := range repo.Comments {
		if c.Issue == n {
			all = append(all, s.commentJSON(repo, c))
		}
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, all)))
}

func (r *Repo) hasIssue(n int) bool {
	_, pr := r.Pulls[n]
	_, is := r.Issues[n]
	return pr || is
}

// POST /repos/{owner}/{repo}/issues/{number}/comments.
func (s *Server) createComment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || !repo.hasIssue(n) {
		notFound(w)
		return
	}
	var in gh.IssueComment
	if !decode(w, r, &in) {
		return
	}
	if missingField(w, "IssueComment", "body", in.GetBody()) {
		return
	}
	if bodyTooLong(w, "IssueComment", *in.Body) {
		return
	}
	who := s.author(r)
	c := s.addComment(repo, n, who, userType(who), *in.Body)
	writeJSON(w, http.StatusCreated, s.commentJSON(repo, c))
}

// PATCH /repos/{owner}/{repo}/issues/comments/{id}.
func (s *Server) editComment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var c *Comment
	for _, x := range repo.Comments {
		if x.ID == id {
			c = x
		}
	}
	if c == nil {
		notFound(w)
		return
	}
	var in gh.IssueComment
	if !decode(w, r, &in) {
		return
	}
	if in.Body == nil {
		validationFailed(w, "IssueComment", "body", "missing_field", "body is missing")
		return
	}
	if bodyTooLong(w, "IssueComment", *in.Body) {
		return
	}
	if c.User != s.author(r) {
		// Editing someone else's comment needs more than the job token has.
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration"})
		return
	}
	c.Body = *in.Body
	c.Edits++
	c.UpdatedAt = s.Clock.Now()
	writeJSON(w, http.StatusOK, s.commentJSON(repo, c))
}

// DELETE /repos/{owner}/{repo}/issues/comments/{id}: 204.
func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for i, x := range repo.Comments {
		if x.ID == id {
			if x.User != s.author(r) {
				writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration"})
				return
			}
			repo.Comments = append(repo.Comments[:i], repo.Comments[i+1:]...)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	notFound(w)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// userType is the author's type as GitHub shows it: a "[bot]" login is an
// App's (or Actions') bot account, anything else a person's.
func userType(login string) string {
	if strings.HasSuffix(login, "[bot]") {
		return "Bot"
	}
	return "User"
}
