package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/lock"
)

// defaultLock is the environment lock in SSM, held by this user and process
// (or the GitHub Actions run); deploy fills in the operation.
func (f *Factory) defaultLock(clients *awsapi.Clients, clk clock.Clock) deploy.LockFunc {
	return deploy.SSMLock(clients.SSM, clk, lock.HolderFromEnv("", f.Getenv))
}

// defaultUnlock breaks the environment's lock whoever holds it.
func defaultUnlock(ctx context.Context, clients *awsapi.Clients, clk clock.Clock, env *config.Environment) (string, error) {
	rec, err := lock.Break(ctx, clients.SSM, env.Name)
	if err != nil {
		return "", err
	}
	if rec == nil {
		return fmt.Sprintf("Environment %s was not locked.", env.Name), nil
	}
	if rec.Token == "" {
		return fmt.Sprintf("Broke the lock of environment %s: %s.", env.Name, rec.Holder), nil
	}
	state := "it was still valid: make sure that run has stopped"
	if !clk.Now().Before(rec.Expires) {
		state = "it had expired"
	}
	return fmt.Sprintf("Broke the lock of environment %s held by %s (run %s, %s) since %s; %s.",
		env.Name, rec.Holder, rec.Run, rec.Operation, rec.Acquired.UTC().Format(time.RFC3339), state), nil
}
