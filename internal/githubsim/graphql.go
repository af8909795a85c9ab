package githubsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// POST /graphql: only the query deploybot sends, `query { viewer { login } }`,
// which GitHub answers for personal access tokens (the user) and for
// installation tokens alike (the App's bot account, github-actions[bot] for
// the job's GITHUB_TOKEN): https://docs.github.com/en/graphql/reference/queries#viewer,
// and e.g. https://github.com/joshjohanning/bulk-github-repo-settings-sync-action/pull/194
// for what it returns with each kind of token. Any other query is unexpected.
// s.mu held.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var in struct{ Query string }
	if err := json.Unmarshal(b, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	q := strings.Join(strings.Fields(in.Query), " ")
	if q != "query { viewer { login } }" && q != "{ viewer { login } }" {
		s.unexpected = append(s.unexpected, "graphql "+q)
		writeJSON(w, http.StatusOK, map[string]any{"errors": []map[string]string{{"message": "not simulated: " + q}}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"viewer": map[string]string{"login": s.author(r)}}})
}
