package demo

import (
	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/cli"
)

func init() { cli.Register(NewCmd) }

// NewCmd builds `deploybot demo`.
func NewCmd(f *cli.Factory) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "See the whole cycle in a few seconds: PR plan, merge, health gate, rollback, teardown (simulated, no credentials)",
		Long: `Run deploybot's real GitHub Action, engine and Prefect health gate against a
simulated AWS account, Prefect Cloud workspace and GitHub repository, in one
process, with no network and no credentials:

  0. bootstrap the GitHub OIDC provider and the plan/apply roles
  1. a pull request adds environments/demo.yaml: the plan comment
  2. the merge applies it: ECS deployment, Prefect health gate, GitHub Deployment
  3. a pull request raises worker.cpu (a one-line plan), its merge applies it
  4. a pull request ships an image whose worker never reaches Prefect: the
     gate fails and the service rolls back to the previous revision
  5. a manual teardown deletes everything

Exit status 0 when every step had its expected outcome, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.Out = f.IO.Out
			_, err := Run(c.Context(), o)
			return err
		},
	}
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the workspace (environment file, event payloads, runner files, full logs)")
	cmd.Flags().BoolVar(&o.Verbose, "verbose", false, "show the Action's full logs")
	return cmd
}
