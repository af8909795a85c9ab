package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/exit"
)

// errorStyleAnnotation marks a command whose errors are printed as GitHub
// Actions annotations on standard output (`deploybot action`) instead of
// "error: ..." on standard error.
const errorStyleAnnotation = "deploybot/error-style"

// ErrorsAsWorkflowCommands makes Main print cmd's errors as GitHub Actions
// error annotations on standard output, where the runner reads workflow
// commands (docs/research/github-actions.md §1.4).
func ErrorsAsWorkflowCommands(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[errorStyleAnnotation] = "workflow"
}

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
		return exit.Input(fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath()))
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

// Main runs deploybot with args and returns the process exit code. It is
// the one place where the CLI (and the container's `deploybot action`)
// prints an error and maps it to a code: exit.Print and exit.CodeOf, once,
// through the process's redacting writers.
func Main(ctx context.Context, f *Factory, args []string) int {
	f.Defaults()
	rawOut, rawErr := f.IO.Out, f.IO.ErrOut
	out, errOut := f.Secrets.Writer(rawOut), f.Secrets.Writer(rawErr)
	f.IO.Out, f.IO.ErrOut = out, errOut
	defer func() {
		_ = out.Flush()
		_ = errOut.Flush()
		f.IO.Out, f.IO.ErrOut = rawOut, rawErr // a Factory may run Main again (the demo's jobs)
	}()

	root := NewCmdRoot(f)
	root.SetArgs(args)
	ran := markRuns(root)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return int(exit.OK)
	}
	if !*ran {
		// Cobra refused the command line itself (an unknown command, a
		// wrong number of arguments, a missing required flag) before any
		// command ran: that is bad input, whatever cobra's wording.
		if _, coded := err.(exit.Coded); !coded {
			err = exit.Input(err)
		}
	}
	var w io.Writer = errOut
	style := exit.Terminal
	if cmd != nil && cmd.Annotations[errorStyleAnnotation] == "workflow" {
		w, style = out, exit.Workflow
	}
	exit.Print(w, err, style)
	return int(exit.CodeOf(err))
}

// markRuns wraps every command's RunE so that Main knows whether cobra got
// as far as running one.
func markRuns(root *cobra.Command) *bool {
	ran := new(bool)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*ran = true
				return run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return ran
}

// loadEnv loads and validates one environment file (no AWS call).
func loadEnv(path string) (*config.Environment, error) {
	if path == "" {
		return nil, exit.Inputf("an environment file is required: -e environments/NAME.yaml")
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
