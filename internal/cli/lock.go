package cli

import (
	"context"
	"errors"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
)

// defaultLock is the environment lock in SSM (internal/lock).
func defaultLock(clients *awsapi.Clients, clk clock.Clock) deploy.LockFunc {
	return nil
}

func defaultUnlock(ctx context.Context, clients *awsapi.Clients, clk clock.Clock, env *config.Environment) (string, error) {
	return "", errors.New("unlock: not available in this build")
}
