package kinds_test

import (
	"context"
	"testing"

	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/secret"
	"github.com/deploybot/deploybot/internal/stack"
)

// TestSecretBackToAnEarlierKey: A → B → A. A's version exists, so the put
// is ignored and the stage must be moved back explicitly, or the plan would
// show the change forever.
func TestSecretBackToAnEarlierKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newComputeWorld(t, computeKey)
	r := c.res(stack.AddrSecret)
	if _, err := (secretsmanager.Secret).Create(ctx, c.x, r, nil); err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{computeKey + "-B", computeKey} {
		next := *r
		s := *r.Spec.(*secretsmanager.SecretSpec)
		s.Value, s.VersionID = secret.New(key), stack.SecretVersionID("staging", key)
		next.Spec = &s
		live := c.read(&next)
		if _, err := (secretsmanager.Secret).Update(ctx, c.x, &next, live, nil, []plan.FieldChange{{Path: "value", Sensitive: true}}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d := computeDiff(must((secretsmanager.Secret).Desired(&next, nil)), c.read(&next).Attrs); len(d) > 0 {
			t.Fatalf("step %d: changes after the update:%s", i, describeChanges(d))
		}
		c.w.Mu.Lock()
		v, _ := c.w.SecretValue(s.Name)
		c.w.Mu.Unlock()
		if v != key {
			t.Fatalf("step %d: the current value is not the key just written", i)
		}
	}
}
