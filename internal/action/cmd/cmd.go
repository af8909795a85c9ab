// Package cmd adds `deploybot action` to the CLI (cli.Register), so that the
// container's entrypoint runs the GitHub Action with the same factory seams
// (resource kinds, Prefect client, environment lock) as plan and apply.
// The binary links it with a blank import in cmd/deploybot.
package cmd

import (
	"github.com/spf13/cobra"

	"github.com/deploybot/deploybot/internal/action"
	"github.com/deploybot/deploybot/internal/cli"
	"github.com/deploybot/deploybot/internal/clock"
	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/deploy"
)

func init() { cli.Register(New) }

// New builds `deploybot action`.
func New(f *cli.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "action",
		Short: "Run as the GitHub Action (the container's entrypoint)",
		Long: `Run deploybot as a GitHub Action: read the event, the inputs (INPUT_*) and the
runner's variables (GITHUB_*, ACTIONS_ID_TOKEN_*), assume AWS roles by GitHub
OIDC, plan, apply, destroy or check drift, and report on the pull request, the
job summary (GITHUB_STEP_SUMMARY) and the outputs (GITHUB_OUTPUT).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o := action.Options{
				Getenv:        f.Getenv,
				Stdout:        f.IO.Out,
				Clock:         f.Clock,
				HTTPClient:    f.HTTPClient,
				LoadAWSConfig: f.AWSConfigFor,
				Secrets:       f.Secrets,
				Engine: action.DeployEngine{
					Kinds: f.Kinds,
					Prefect: func(env *config.Environment, key string, _ clock.Clock) (deploy.Prefect, error) {
						return f.Prefect(env, key)
					},
					Lock: f.Lock,
				},
			}
			// cli.Main prints the error, once, as annotations.
			return action.Run(c.Context(), o)
		},
	}
	cli.ErrorsAsWorkflowCommands(cmd)
	return cmd
}
