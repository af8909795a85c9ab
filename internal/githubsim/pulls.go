package githubsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

func (s *Server) pullJSON(r *Repo, p *Pull) *gh.PullRequest {
	headRepo := p.HeadRepo
	if headRepo == "" {
		headRepo = r.Owner + "/" + r.Name
	}
	ho, hn, _ := strings.Cut(headRepo, "/")
	out := &gh.PullRequest{
		Number: gh.Int(p.Number), State: gh.String(p.State), Merged: gh.Bool(p.Merged),
		HTMLURL: gh.String(fmt.Sprintf("https://github.com/%s/%s/pull/%d", r.Owner, r.Name, p.Number)),
		Head: &gh.PullRequestBranch{SHA: gh.String(p.HeadSHA), Ref: gh.String(p.HeadRef),
			Repo: &gh.Repository{FullName: gh.String(headRepo), Name: gh.String(hn), Owner: &gh.User{Login: gh.String(ho)}}},
		Base: &gh.PullRequestBranch{SHA: gh.String(p.BaseSHA), Ref: gh.String(p.BaseRef),
			Repo: &gh.Repository{FullName: gh.String(r.Owner + "/" + r.Name), Name: gh.String(r.Name), Owner: &gh.User{Login: gh.String(r.Owner)}}},
	}
	if p.Merged {
		// List endpoints carry merged_at (the simple pull request object has
		// no "merged" field); GET /pulls/{n} carries both.
		out.MergedAt = ts(s.Clock.Now())
	}
	if p.MergeCommitSHA != "" {
		out.MergeCommitSHA = gh.String(p.MergeCommitSHA)
	}
	return out
}

// GET /repos/{owner}/{repo}/pulls/{number}.
func (s *Server) getPull(w http.ResponseWriter, r *http.Request, repo *Repo) {
	p := numbered(w, r, repo.Pulls)
	if p == nil {
		return
	}
	writeJSON(w, http.StatusOK, s.pullJSON(repo, p))
}

func filesJSON(files []File) []*gh.CommitFile {
	out := []*gh.CommitFile{}
	for _, f := range files {
		cf := &gh.CommitFile{Filename: gh.String(f.Filename), Status: gh.String(f.Status)}
		if f.PreviousFilename != "" {
			cf.PreviousFilename = gh.String(f.PreviousFilename)
		}
		out = append(out, cf)
	}
	return out
}

// GET /repos/{owner}/{repo}/pulls/{number}/files: paginated, at most 3000
// files in all (docs/research/github-actions.md §3.3).
func (s *Server) listPullFiles(w http.ResponseWriter, r *http.Request, repo *Repo) {
	p := numbered(w, r, repo.Pulls)
	if p == nil {
		return
	}
	files := p.Files
	if len(files) > MaxPullFiles {
		files = files[:MaxPullFiles]
	}
	writeJSON(w, http.StatusOK, paginate(w, r, filesJSON(files)))
}

// GET /repos/{owner}/{repo}/compare/{base}...{head}: the changed files are
// listed on the first page only, at most 300 of them (docs/research/github-actions.md
// §5.1); an unknown base (e.g. the zero SHA of a new branch) is a 404.
func (s *Server) compare(w http.ResponseWriter, r *http.Request, repo *Repo) {
	bh := r.PathValue("basehead")
	files, ok := repo.Compares[bh]
	if !ok {
		notFound(w)
		return
	}
	if len(files) > MaxCompareFiles {
		files = files[:MaxCompareFiles]
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	out := &gh.CommitsComparison{Status: gh.String("ahead"), AheadBy: gh.Int(1), TotalCommits: gh.Int(1),
		HTMLURL: gh.String(fmt.Sprintf("https://github.com/%s/%s/compare/%s", repo.Owner, repo.Name, bh))}
	if page <= 1 {
		out.Files = filesJSON(files)
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /repos/{owner}/{repo}/commits/{sha}/pulls: open and closed pull
// requests that contain the commit (docs/research/github-actions.md §5.1).
func (s *Server) pullsForCommit(w http.ResponseWriter, r *http.Request, repo *Repo) {
	sha := r.PathValue("sha")
	var out []*gh.PullRequest
	for n := 1; n < repo.nextNumber; n++ {
		p := repo.Pulls[n]
		if p == nil {
			continue
		}
		for _, c := range append([]string{p.HeadSHA, p.MergeCommitSHA}, p.Commits...) {
			if c != "" && c == sha {
				j := s.pullJSON(repo, p)
				j.Merged = nil // the list shape has merged_at only
				out = append(out, j)
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, out)))
}
