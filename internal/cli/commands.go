package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
	"github.com/deploybot/deploybot/internal/exit"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/render"
	"github.com/deploybot/deploybot/internal/stack"
)

// ---- validate ----

// ValidateOptions are the inputs of `deploybot validate`.
type ValidateOptions struct {
	F     *Factory
	Files []string
	// Dir is searched when no files are given.
	Dir string
}

// NewCmdValidate: `deploybot validate [FILE...]`.
func NewCmdValidate(f *Factory, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{F: f, Dir: "environments"}
	return &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Check environment files without touching AWS (default: environments/*.yaml)",
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return validateRun(cmd.Context(), opts)
		},
	}
}

func validateRun(_ context.Context, o *ValidateOptions) error {
	files := o.Files
	if len(files) == 0 {
		var err error
		if files, err = config.Discover(o.Dir); err != nil {
			return err
		}
	}
	envs, err := config.LoadAll(files)
	if err != nil {
		return err
	}
	for _, e := range envs {
		fmt.Fprintf(o.F.IO.Out, "%s: ok (environment %s, account %s, %s)\n", e.File, e.Name, e.AWS.AccountID, e.AWS.Region)
	}
	return nil
}

// envCommand is a command on one environment file (-e FILE, no arguments):
// it runs run, or runF in its place when a test gives one.
func envCommand[O any](use, short string, opts *O, envFile *string, runF, run func(context.Context, *O) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(envFile, "environment", "e", "", "environment file (required)")
	return cmd
}

// ---- plan ----

// PlanOptions are the inputs of `deploybot plan`.
type PlanOptions struct {
	F                *Factory
	EnvFile          string
	Format           string // text | markdown | json
	OutFile          string
	DetailedExitCode bool
}

// NewCmdPlan: `deploybot plan -e FILE [--format text|markdown|json] [--out FILE] [--detailed-exitcode]`.
func NewCmdPlan(f *Factory, runF func(context.Context, *PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{F: f}
	cmd := envCommand("plan -e FILE", "Show what apply would change (reads AWS, writes nothing)", opts, &opts.EnvFile, runF, planRun)
	cmd.Flags().StringVar(&opts.Format, "format", "text", "output format: text, markdown or json")
	cmd.Flags().StringVar(&opts.OutFile, "out", "", "write the plan to FILE instead of standard output")
	cmd.Flags().BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "exit 4 when the plan has changes")
	return cmd
}

func planRun(ctx context.Context, o *PlanOptions) error {
	switch o.Format {
	case "text", "markdown", "json":
	default:
		return exit.Inputf("--format %q: want text, markdown or json", o.Format)
	}
	env, err := loadEnv(o.EnvFile)
	if err != nil {
		return err
	}
	f := o.F
	pr := &progress{w: f.IO.ErrOut}
	eng, err := f.engine(ctx, env, pr)
	if err != nil {
		return err
	}
	key := f.credential(env)
	pr.line(fmt.Sprintf("Planning %s (%s, account %s, %s)…", env.Name, env.File, env.AWS.AccountID, env.AWS.Region))
	if key.IsZero() {
		what := "Prefect API key"
		if env.BasicAuth() {
			what = "Prefect auth string"
		}
		pr.line("note: " + credentialVariable(env) + " is not set, so this plan cannot tell whether the stored " + what + " would change")
	}
	res, err := deploy.Plan(ctx, deploy.Options{Env: env, Credential: key, Secrets: f.Secrets, Engine: eng, Prefect: f.prefectIfAny(env, key)})
	if err != nil {
		return err
	}
	if err := writePlan(o, res.Plan); err != nil {
		return err
	}
	if o.DetailedExitCode && res.Plan.HasChanges() {
		// terraform's -detailed-exitcode: changes are pending, nothing failed.
		return exit.Silent(exit.ChangesPending)
	}
	return nil
}

func writePlan(o *PlanOptions, p *plan.Plan) error {
	var b strings.Builder
	switch o.Format {
	case "json":
		j, err := render.JSON(p)
		if err != nil {
			return err
		}
		b.Write(j)
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
	case "markdown":
		b.WriteString(render.Comment(p, nil, render.CommentOptions{}))
	default:
		color := o.OutFile == "" && o.F.color()
		if err := render.Text(&b, p, render.TextOptions{Color: color}); err != nil {
			return err
		}
	}
	out := o.F.Secrets.Redact(b.String())
	if o.OutFile != "" {
		if err := os.WriteFile(o.OutFile, []byte(out), 0o644); err != nil {
			return fmt.Errorf("write the plan to %s: %w", o.OutFile, err)
		}
		fmt.Fprintf(o.F.IO.ErrOut, "Plan written to %s\n", o.OutFile)
		return nil
	}
	_, err := fmt.Fprint(o.F.IO.Out, out)
	return err
}

// ---- apply ----

// ApplyOptions are the inputs of `deploybot apply`.
type ApplyOptions struct {
	F       *Factory
	EnvFile string
	Yes     bool
}

// NewCmdApply: `deploybot apply -e FILE [--yes]`.
func NewCmdApply(f *Factory, runF func(context.Context, *ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{F: f}
	cmd := envCommand("apply -e FILE [--yes]", "Apply the plan, wait for the ECS deployment and the Prefect health gate", opts, &opts.EnvFile, runF, applyRun)
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "apply without asking (required when standard input is not a terminal)")
	return cmd
}

func applyRun(ctx context.Context, o *ApplyOptions) error {
	f := o.F
	env, err := loadEnv(o.EnvFile)
	if err != nil {
		return err
	}
	key := f.credential(env)
	if key.IsZero() {
		return exit.Inputf("%s is not set: apply stores the worker's Prefect credential in Secrets Manager and checks it before changing anything", credentialVariable(env))
	}
	if !o.Yes && !f.IO.InTTY {
		return exit.Inputf("refusing to apply without --yes: standard input is not a terminal to confirm on")
	}
	pr := &progress{w: f.IO.ErrOut}
	eng, err := f.engine(ctx, env, pr)
	if err != nil {
		return err
	}
	gate, err := f.Prefect(env, key.Reveal())
	if err != nil {
		return exit.Input(fmt.Errorf("%s: prefect.api_url: %w", env.File, err))
	}
	opts := deploy.Options{Env: env, Credential: key, Secrets: f.Secrets, Engine: eng, Prefect: gate, Lock: f.Lock(eng.AWS, f.Clock), Events: pr.events()}

	if !o.Yes {
		pr.line(fmt.Sprintf("Planning %s (%s, account %s, %s)…", env.Name, env.File, env.AWS.AccountID, env.AWS.Region))
		res, err := deploy.Plan(ctx, opts)
		if err != nil {
			return err
		}
		if err := writePlan(&PlanOptions{F: f, Format: "text"}, res.Plan); err != nil {
			return err
		}
		if !res.Plan.HasChanges() {
			return nil
		}
		ok, err := confirm(f, fmt.Sprintf("Apply these changes to environment %s in account %s? Only 'yes' will be accepted: ", env.Name, env.AWS.AccountID))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(f.IO.ErrOut, "Apply cancelled; nothing was changed.")
			return exit.Silent(exit.Failure)
		}
		// What was shown is what was reviewed: a destroy or replacement that
		// appears between now and the apply is refused.
		opts.ReviewedPlan = res.Plan
	}

	pr.line(fmt.Sprintf("Applying %s (%s, account %s, %s)…", env.Name, env.File, env.AWS.AccountID, env.AWS.Region))
	res, err := deploy.Apply(ctx, opts)
	return finishRun(f, pr, res, err)
}

// finishRun prints what an apply or destroy did: its warnings and notes on
// stderr, its report on stdout; err is what the command returns.
func finishRun(f *Factory, pr *progress, res *deploy.Result, err error) error {
	if res == nil {
		return err
	}
	for _, w := range res.Warnings {
		pr.line("warning: " + w)
	}
	if res.Report != nil {
		if rerr := writeReport(f, res.Report); rerr != nil && err == nil {
			err = rerr
		}
	}
	for _, n := range res.Notes {
		pr.line("note: " + n)
	}
	return err
}

func writeReport(f *Factory, r *plan.Report) error {
	var b strings.Builder
	if err := render.ReportText(&b, r, render.TextOptions{Color: f.color()}); err != nil {
		return err
	}
	_, err := fmt.Fprint(f.IO.Out, b.String())
	return err
}

func confirm(f *Factory, question string) (bool, error) {
	fmt.Fprint(f.IO.ErrOut, question)
	line, err := bufio.NewReader(f.IO.In).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	return strings.TrimSpace(line) == "yes", nil
}

// ---- destroy ----

// DestroyOptions are the inputs of `deploybot destroy`.
type DestroyOptions struct {
	F       *Factory
	EnvFile string
	Confirm string
	Force   bool
}

// NewCmdDestroy: `deploybot destroy -e FILE --confirm NAME [--force]`.
func NewCmdDestroy(f *Factory, runF func(context.Context, *DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{F: f}
	cmd := envCommand("destroy -e FILE --confirm NAME [--force]", "Delete the environment's whole stack, in reverse dependency order", opts, &opts.EnvFile, runF, destroyRun)
	cmd.Flags().StringVar(&opts.Confirm, "confirm", "", "the environment's name, to confirm (required)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "delete the Prefect API key secret at once, without Secrets Manager's recovery window")
	return cmd
}

func destroyRun(ctx context.Context, o *DestroyOptions) error {
	f := o.F
	env, err := loadEnv(o.EnvFile)
	if err != nil {
		return err
	}
	if o.Confirm != env.Name {
		if o.Confirm == "" {
			return exit.Inputf("destroy needs --confirm %s (the environment's name) to go ahead", env.Name)
		}
		return exit.Inputf("--confirm %q does not match the environment's name %q (%s); nothing was done", o.Confirm, env.Name, env.File)
	}
	// The stack's guard (protect: true) refuses before any AWS call.
	if st, err := stack.Build(env, ""); err != nil {
		return err
	} else if err := st.Refusal(plan.OpDestroy); err != nil {
		return err
	}
	pr := &progress{w: f.IO.ErrOut}
	eng, err := f.engine(ctx, env, pr)
	if err != nil {
		return err
	}
	pr.line(fmt.Sprintf("Destroying %s (%s, account %s, %s)…", env.Name, env.File, env.AWS.AccountID, env.AWS.Region))
	// The Prefect key lets the destroy delete the work pool it created, or
	// reset the defaults it set; without it the pool is left as it is, and
	// the destroy says so.
	res, err := deploy.Destroy(ctx, deploy.Options{Env: env, Secrets: f.Secrets, Engine: eng, Lock: f.Lock(eng.AWS, f.Clock), Force: o.Force, Events: pr.events(),
		Prefect: f.prefectIfAny(env, f.credential(env))})
	return finishRun(f, pr, res, err)
}

// ---- unlock ----

// UnlockOptions are the inputs of `deploybot unlock`.
type UnlockOptions struct {
	F       *Factory
	EnvFile string
}

// NewCmdUnlock: `deploybot unlock -e FILE`.
func NewCmdUnlock(f *Factory, runF func(context.Context, *UnlockOptions) error) *cobra.Command {
	opts := &UnlockOptions{F: f}
	cmd := envCommand("unlock -e FILE", "Break the environment's lock (after a run died without releasing it)", opts, &opts.EnvFile, runF, unlockRun)
	return cmd
}

func unlockRun(ctx context.Context, o *UnlockOptions) error {
	env, err := loadEnv(o.EnvFile)
	if err != nil {
		return err
	}
	c, err := o.F.clients(ctx, env)
	if err != nil {
		return err
	}
	msg, err := o.F.Unlock(ctx, c, o.F.Clock, env)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.F.IO.Out, msg)
	return nil
}

// ---- version ----

// NewCmdVersion: `deploybot version`.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print deploybot's version and commit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(f.IO.Out, "deploybot version "+versionString())
			return err
		},
	}
}
