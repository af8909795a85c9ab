package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/bootstrap"
	"github.com/deploybot/deploybot/internal/exit"
)

func init() { Register(NewCmdBootstrap) }

// BootstrapOptions are `deploybot bootstrap`'s flags.
type BootstrapOptions struct {
	File                 string
	Repo                 string
	DefaultBranch        string
	ApplyOnDefaultBranch bool
	Apply                bool
}

// NewCmdBootstrap prints (or creates, with --apply) the GitHub OIDC provider
// and the plan and apply roles an environment needs.
func NewCmdBootstrap(f *Factory) *cobra.Command {
	o := &BootstrapOptions{}
	cmd := &cobra.Command{
		Use:   "bootstrap -e FILE --repo OWNER/NAME [--apply]",
		Short: "Print or create the OIDC provider and the IAM roles the GitHub Action assumes",
		Long: `bootstrap derives what the GitHub Action needs in the environment's AWS account:
the GitHub OIDC identity provider, the read-only plan role (trusted by the
repository's pull_request jobs and its default branch's, for drift checks), the
environment's apply role (trusted only by jobs in the GitHub environment of
the same name, so its required reviewers stand between a merge and an apply),
each with a least-privilege policy limited to what deploybot calls and to this
environment's resources, and the account's service-linked roles for ECS and
Application Auto Scaling (which a first apply needs and the apply role may not
create).

--apply-on-default-branch also trusts the apply role to jobs on the default
branch without an environment: only for teams without GitHub environments,
since any such job (a drift check, a manual plan) could then apply.

Without --apply it prints the documents and changes nothing. With --apply it
creates or updates them using admin credentials from the AWS SDK's chain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return bootstrapRun(cmd, f, o) },
	}
	cmd.Flags().StringVarP(&o.File, "environment", "e", "", "environment file")
	cmd.Flags().StringVar(&o.Repo, "repo", "", "GitHub repository OWNER/NAME whose workflows assume the roles (default: $GITHUB_REPOSITORY)")
	cmd.Flags().StringVar(&o.DefaultBranch, "default-branch", "main", "the repository's default branch (its jobs may plan: drift checks, manual plans)")
	cmd.Flags().BoolVar(&o.ApplyOnDefaultBranch, "apply-on-default-branch", false, "also let default-branch jobs without a GitHub environment assume the apply role (no required reviewers; for repositories without environments)")
	cmd.Flags().BoolVar(&o.Apply, "apply", false, "create or update the provider and roles (needs IAM admin credentials)")
	return cmd
}

func bootstrapRun(cmd *cobra.Command, f *Factory, o *BootstrapOptions) error {
	env, err := loadEnv(o.File)
	if err != nil {
		return err
	}
	if o.Repo == "" {
		o.Repo = f.Getenv("GITHUB_REPOSITORY")
	}
	if o.Repo == "" {
		return exit.Inputf("--repo OWNER/NAME is required (the repository whose workflows assume the roles)")
	}
	res, err := bootstrap.Build(env, bootstrap.Options{Repo: o.Repo, DefaultBranch: o.DefaultBranch, ApplyOnDefaultBranch: o.ApplyOnDefaultBranch})
	if err != nil {
		return exit.Input(err)
	}
	if !o.Apply {
		return res.Print(f.IO.Out)
	}
	c, err := f.clients(cmd.Context(), env)
	if err != nil {
		return err
	}
	say := func(s string) { fmt.Fprintln(f.IO.ErrOut, "  "+s) }
	if err := res.Apply(cmd.Context(), c.IAM, say); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "bootstrap of %s done: plan role %s, apply role %s\n", env.Name, res.PlanRole.ARN, res.ApplyRole.ARN)
	return nil
}
