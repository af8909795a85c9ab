package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
)

// exitError carries an exit code without a message (already said, or
// nothing to say: plan --detailed-exitcode with changes).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e *exitError) ExitCode() int { return e.code }

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "deploybot",
		Short: "Keep a Prefect worker running on AWS ECS Fargate, one stack per environment file",
		Long: `deploybot plans, applies and destroys the AWS stack of a Prefect worker
(ECS Fargate, IAM, Secrets Manager, Cloud Map, CloudWatch Logs) from one
environment file, and holds each deploy behind a Prefect health gate.

Exit codes: 0 ok, 1 error, 2 bad input, 3 health gate failed,
4 changes pending (plan --detailed-exitcode).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `deploybot version` prints, with cobra's
		// default format ("deploybot version ..."). No SetVersionTemplate
		// (nor any other cobra template): executing a text/template makes
		// the linker keep every method of every SDK client
		// (docs/ARCHITECTURE.md "What ships").
		Version: versionString(),
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &deploy.InputError{Err: fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())}
	})
	root.AddCommand(
		NewCmdValidate(f, nil),
		NewCmdPlan(f, nil),
		NewCmdApply(f, nil),
		NewCmdDestroy(f, nil),
		NewCmdUnlock(f, nil),
		NewCmdVersion(f),
	)
	for _, newCmd := range extraCommands {
		root.AddCommand(newCmd(f))
	}
	return root
}

// Main runs deploybot with args and returns the process exit code. Errors
// are printed here, once: config problems one "FILE:LINE: field: message"
// per line, anything else as "error: ...".
func Main(ctx context.Context, f *Factory, args []string) int {
	f.Defaults()
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return deploy.ExitOK
	}
	if isCobraUsageError(err) {
		err = &deploy.InputError{Err: err}
	}
	printError(f.IO.ErrOut, err, f.apiKey())
	return deploy.ExitCode(err, nil)
}

func printError(w io.Writer, err error, key string) {
	var ee *exitError
	if errors.As(err, &ee) {
		return
	}
	msg := err.Error()
	var ce *config.Errors
	if !errors.As(err, &ce) {
		msg = "error: " + msg
	}
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[redacted]")
	}
	fmt.Fprintln(w, msg)
}

// isCobraUsageError recognises cobra's own argument errors (it has no types
// for them).
func isCobraUsageError(err error) bool {
	m := err.Error()
	for _, p := range []string{"unknown command", "required flag(s)", "accepts ", "requires at least", "unknown flag", "unknown shorthand flag", "invalid argument"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// loadEnv loads and validates one environment file (no AWS call).
func loadEnv(path string) (*config.Environment, error) {
	if path == "" {
		return nil, deploy.BadInput("an environment file is required: -e environments/NAME.yaml")
	}
	return config.Load(path)
}

// extraCommands are commands other packages add (`deploybot demo`), so that
// cli does not import them.
var extraCommands []func(f *Factory) *cobra.Command

// Register adds a command to every root built from now on; call it from an
// init function.
func Register(newCmd func(f *Factory) *cobra.Command) {
	extraCommands = append(extraCommands, newCmd)
}
