package githubsim

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"
)

// AddApp registers a GitHub App (its public key) installed as installationID.
// Installation tokens minted for it author comments as "<slug>[bot]".
func (s *Server) AddApp(appID int64, slug string, key *rsa.PublicKey, installationID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = &app{key: key, slug: slug, installations: map[int64]bool{installationID: true}}
}

// POST /app/installations/{id}/access_tokens: the app authenticates with an
// RS256 JWT whose issuer is the app id (docs/research/github-actions.md §3.1).
func (s *Server) installationToken(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded"})
		return
	}
	var found *app
	tok, err := jwt.ParseWithClaims(raw, &jwt.RegisteredClaims{}, func(t *jwt.Token) (any, error) {
		c := t.Claims.(*jwt.RegisteredClaims)
		id, _ := strconv.ParseInt(c.Issuer, 10, 64)
		if found = s.apps[id]; found == nil {
			return nil, fmt.Errorf("unknown app %q", c.Issuer)
		}
		return found.key, nil
	}, jwt.WithoutClaimsValidation())
	if err != nil || !tok.Valid {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded"})
		return
	}
	inst, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if !found.installations[inst] {
		notFound(w)
		return
	}
	s.nextID++
	token := fmt.Sprintf("ghs_simulated%d", s.nextID)
	s.tokens[token] = found.slug + "[bot]"
	writeJSON(w, http.StatusCreated, &gh.InstallationToken{Token: gh.String(token), ExpiresAt: ts(s.Clock.Now().Add(60 * 60 * 1e9))})
}
