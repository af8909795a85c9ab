package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// TestWorkerEnvCredentials is issue 11 item 9: the common credentials in
// worker.env are refused, at their line, naming the field and the way to do
// it instead; names and values that only point at a credential kept
// elsewhere pass. Credential-shaped values are built here at run time, so
// that no credential-shaped literal lives in the repository (see
// internal/fakekey).
func TestWorkerEnvCredentials(t *testing.T) {
	rep := strings.Repeat
	refused := []struct {
		name, value, why string
	}{
		{"AWS_SECRET_ACCESS_KEY", "wJalr" + rep("x", 35), "task role"},
		{"AWS_ACCESS_KEY_ID", "AKIA" + rep("Q", 16), "task role"},
		{"SOME_ID", "AKIA" + rep("Q", 16), "an AWS access key id"},
		{"AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2Vj" + rep("y", 40), "task role"},
		{"API_KEY", "k", "Secrets Manager"},
		{"OPENAI_API_KEY", "sk-proj-" + rep("a", 40), "an API secret key"},
		{"STRIPE_SECRET_KEY", "s", "SECRET_KEY"},
		{"DB_PASS", "hunter2", "PASS"},
		{"DB_PASSWORD", "x", "PASSWORD"},
		{"DB_PASSWORD_2", "x", "PASSWORD"},
		{"PGPASSWORD", "x", "PGPASSWORD"},
		{"GITHUB_TOKEN", "ghp_" + rep("A1b2", 9), "a GitHub token"},
		{"HELPER", "ghp_" + rep("A1b2", 9), "a GitHub token"},
		{"DATABASE_URL", "postgres://app:" + rep("p", 12) + "@db.internal:5432/prod", "a URL with a password"},
		{"BROKER", "amqp://user:" + rep("p", 8) + "@mq:5672", "a URL with a password"},
		{"GCP_CREDENTIALS", `{"type": "service_account"}`, "GCP_CREDENTIALS"},
		{"SA", `{"type": "service_account", "private_key": "x"}`, "a service account key"},
		{"PREFECT_API_AUTH_STRING", "admin:pass", "PREFECT_API_AUTH_STRING"},
		{"SLACK_HOOK", "https://hooks.slack.com/services/T0000/B0000/" + rep("z", 24), "a Slack webhook"},
		{"JWT", "eyJ" + rep("a", 12) + ".eyJ" + rep("b", 12) + "." + rep("c", 12), "a JSON Web Token"},
		{"TLS", "-----BEGIN RSA PRIVATE KEY----- MIIE", "a private key"},
		{"SIGNING_KEY", "q8Zr2LmX0pV7sT4wY1uN6kH3", "SIGNING_KEY"},
		{"CACHE_KEY", "q8Zr2LmX0pV7sT4wY1uN6kH3bD9f", "random-looking value"},
		{"CLIENT_SECRET", "x", "SECRET"},
		{"AUTH_TOKEN", "x", "TOKEN"},
	}
	for _, c := range refused {
		t.Run("refused "+c.name, func(t *testing.T) {
			content := configtest.Edit(configtest.Environment, map[int]string{13: fmt.Sprintf("  env: {%s: %q}", c.name, c.value)})
			path := writeFile(t, t.TempDir(), "env.yaml", content)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("%s=%.8s… passed", c.name, c.value)
			}
			msg := problemsOf(t, err)[0].String()
			for _, want := range []string{path + ":13: worker.env." + c.name + ": looks like", c.why} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q lacks %q", msg, want)
				}
			}
			if !strings.Contains(msg, "Secrets Manager") && !strings.Contains(msg, "task role") {
				t.Errorf("%q does not say what to do instead", msg)
			}
			if strings.Contains(msg, c.value) && len(c.value) > 8 {
				t.Errorf("the message repeats the credential: %q", msg)
			}
		})
	}
	passes := []struct{ name, value string }{
		{"DB_PASSWORD_FILE", "/run/secrets/db"},
		{"DB_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
		{"DB_PASSWORD", "${DB_PASSWORD}"},
		{"TOKEN_URL", "https://auth.example.com/token"},
		{"SECRET_NAME", "prod/db"},
		{"DATABASE_URL", "postgres://db.internal:5432/prod"},
		{"DATABASE_URL", "postgres://app:${DB_PASSWORD}@db.internal:5432/prod"},
		{"CACHE_KEY", "flows-v2"},
		{"PUBLIC_KEY_PATH", "/etc/keys/pub.pem"},
		{"PWD", "/opt/prefect"},
		{"LOG_LEVEL", "DEBUG"},
		{"PREFECT_LOGGING_LEVEL", "INFO"},
		{"PASSTHROUGH", "yes"},
		{"SKIP_TASKS", "sk-ip"},
	}
	for _, c := range passes {
		t.Run("passes "+c.name, func(t *testing.T) {
			content := configtest.Edit(configtest.Environment, map[int]string{13: fmt.Sprintf("  env: {%s: %q}", c.name, c.value)})
			if _, err := Load(writeFile(t, t.TempDir(), "env.yaml", content)); err != nil {
				t.Errorf("%s=%q refused: %v", c.name, c.value, err)
			}
		})
	}
}
