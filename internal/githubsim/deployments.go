package githubsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

func (s *Server) deploymentJSON(r *Repo, d *Deployment) *gh.Deployment {
	url := fmt.Sprintf("%s/repos/%s/%s/deployments/%d", s.URL, r.Owner, r.Name, d.ID)
	return &gh.Deployment{
		ID: gh.Int64(d.ID), URL: gh.String(url), SHA: gh.String(d.SHA), Ref: gh.String(d.Ref), Task: gh.String(d.Task),
		Payload: d.Payload, Environment: gh.String(d.Environment), Description: gh.String(d.Description),
		Creator: &gh.User{Login: gh.String(BotLogin)}, CreatedAt: ts(d.CreatedAt), UpdatedAt: ts(d.CreatedAt),
		StatusesURL: gh.String(url + "/statuses"), NodeID: gh.String(fmt.Sprintf("DE_%d", d.ID)),
	}
}

// POST /repos/{owner}/{repo}/deployments.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	var in gh.DeploymentRequest
	if !decode(w, r, &in) {
		return
	}
	if missingField(w, "Deployment", "ref", in.GetRef()) {
		return
	}
	if (in.AutoMerge == nil || *in.AutoMerge) && repo.RefBehindDefault {
		writeJSON(w, http.StatusAccepted, map[string]string{"message": "Auto-merged " + repo.DefaultBranch + " into " + in.GetRef() + " on deployment."})
		return
	}
	if in.RequiredContexts == nil && len(repo.FailingContexts) > 0 {
		writeJSON(w, http.StatusConflict, map[string]any{"message": "Conflict: Commit status checks failed for " + in.GetRef() + ".",
			"errors": []map[string]string{{"contexts": fmt.Sprint(repo.FailingContexts)}}})
		return
	}
	env := in.GetEnvironment()
	if env == "" {
		env = "production"
	}
	task := in.GetTask()
	if task == "" {
		task = "deploy"
	}
	var payload json.RawMessage
	switch p := in.Payload.(type) {
	case nil:
		payload = json.RawMessage(`{}`)
	case string:
		payload = json.RawMessage(p)
	default:
		payload, _ = json.Marshal(p)
	}
	s.nextID++
	d := &Deployment{ID: s.nextID, Ref: in.GetRef(), SHA: in.GetRef(), Task: task, Environment: env,
		Description: in.GetDescription(), Payload: payload, AutoMerge: in.AutoMerge, RequiredContexts: in.RequiredContexts,
		TransientEnvironment: in.GetTransientEnvironment(), CreatedAt: s.Clock.Now()}
	if in.ProductionEnvironment != nil {
		d.ProductionEnvironment = *in.ProductionEnvironment
	} else {
		d.ProductionEnvironment = env == "production"
	}
	repo.Deployments = append(repo.Deployments, d)
	writeJSON(w, http.StatusCreated, s.deploymentJSON(repo, d))
}

// GET /repos/{owner}/{repo}/deployments: newest first, filtered by sha, ref,
// task and environment, paginated.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, repo *Repo) {
	q := r.URL.Query()
	var out []*gh.Deployment
	for i := len(repo.Deployments) - 1; i >= 0; i-- {
		d := repo.Deployments[i]
		if (q.Get("sha") != "" && q.Get("sha") != d.SHA) || (q.Get("ref") != "" && q.Get("ref") != d.Ref) ||
			(q.Get("task") != "" && q.Get("task") != d.Task) || (q.Get("environment") != "" && q.Get("environment") != d.Environment) {
			continue
		}
		out = append(out, s.deploymentJSON(repo, d))
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, out)))
}

var deploymentStates = map[string]bool{"error": true, "failure": true, "inactive": true, "in_progress": true, "queued": true, "pending": true, "success": true}

// deploymentOf finds the deployment the path's {id} names, or answers 404
// and returns nil.
func deploymentOf(w http.ResponseWriter, r *http.Request, repo *Repo) *Deployment {
	n, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for _, d := range repo.Deployments {
		if d.ID == n {
			return d
		}
	}
	notFound(w)
	return nil
}

// POST /repos/{owner}/{repo}/deployments/{id}/statuses. A success status
// with auto_inactive (default true) marks earlier successful deployments of
// the same non-transient, non-production environment inactive
// (docs/research/github-actions.md §3.3).
func (s *Server) createDeploymentStatus(w http.ResponseWriter, r *http.Request, repo *Repo) {
	d := deploymentOf(w, r, repo)
	if d == nil {
		return
	}
	var in gh.DeploymentStatusRequest
	if !decode(w, r, &in) {
		return
	}
	if !deploymentStates[in.GetState()] {
		validationFailed(w, "DeploymentStatus", "state", "invalid", "state is not included in the list")
		return
	}
	if utf8.RuneCountInString(in.GetDescription()) > 140 {
		validationFailed(w, "DeploymentStatus", "description", "custom", "description is too long (maximum is 140 characters)")
		return
	}
	s.nextID++
	st := DeploymentStatus{ID: s.nextID, State: in.GetState(), Description: in.GetDescription(), LogURL: in.GetLogURL(), EnvironmentURL: in.GetEnvironmentURL()}
	d.Statuses = append(d.Statuses, st)
	if st.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) && !d.TransientEnvironment && !d.ProductionEnvironment {
		for _, o := range repo.Deployments {
			if o != d && o.Environment == d.Environment && o.State() == "success" {
				s.nextID++
				o.Statuses = append(o.Statuses, DeploymentStatus{ID: s.nextID, State: "inactive", Auto: true})
			}
		}
	}
	writeJSON(w, http.StatusCreated, s.statusJSON(repo, d, st))
}

func (s *Server) statusJSON(repo *Repo, d *Deployment, st DeploymentStatus) *gh.DeploymentStatus {
	return &gh.DeploymentStatus{ID: gh.Int64(st.ID), State: gh.String(st.State), Description: gh.String(st.Description),
		Environment: gh.String(d.Environment), LogURL: gh.String(st.LogURL), TargetURL: gh.String(st.LogURL),
		EnvironmentURL: gh.String(st.EnvironmentURL), Creator: &gh.User{Login: gh.String(BotLogin)},
		DeploymentURL: gh.String(fmt.Sprintf("%s/repos/%s/%s/deployments/%d", s.URL, repo.Owner, repo.Name, d.ID))}
}

// GET /repos/{owner}/{repo}/deployments/{id}/statuses: newest first.
func (s *Server) listDeploymentStatuses(w http.ResponseWriter, r *http.Request, repo *Repo) {
	d := deploymentOf(w, r, repo)
	if d == nil {
		return
	}
	var out []*gh.DeploymentStatus
	for i := len(d.Statuses) - 1; i >= 0; i-- {
		out = append(out, s.statusJSON(repo, d, d.Statuses[i]))
	}
	writeJSON(w, http.StatusOK, nonNil(paginate(w, r, out)))
}
