// Command deploybot keeps a Prefect worker running on AWS ECS Fargate.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deploybot/deploybot/internal/cli"

	// `deploybot action`, the container's entry point (it registers itself
	// with the CLI). `deploybot demo` is added by demo.go, except in the
	// release build (-tags release), which links no simulator.
	_ "github.com/deploybot/deploybot/internal/action/cmd"
)

func main() {
	// A cancelled GitHub Actions job sends SIGTERM: stop starting work,
	// release the environment lock, and exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, &cli.Factory{}, os.Args[1:])
	stop()
	os.Exit(code)
}
