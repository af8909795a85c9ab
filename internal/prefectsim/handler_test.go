package prefectsim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/deploybot/deploybot/internal/clock"
)

// TestHandlerServesInProcess: the handler answers like the listener,
// including auth, without any connection.
func TestHandlerServesInProcess(t *testing.T) {
	t.Parallel()
	s := New(nil, WithClock(clock.NewVirtual(time.Unix(0, 0))), WithKey("pnu_valid"))
	defer s.Close()
	tests := []struct {
		key  string
		want int
	}{
		{"pnu_valid", http.StatusOK},
		{"pnu_wrong", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(http.MethodGet, "http://prefect.invalid/api/me/", nil)
		req.Header.Set("Authorization", "Bearer "+tc.key)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("key %s: status %d, want %d: %s", tc.key, rec.Code, tc.want, rec.Body)
		}
	}
}
