package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// FuzzLoad: whatever the bytes, Load does not panic, and it returns either
// a valid environment or an *Errors whose every problem names the file, a
// line and a message.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		configtest.Environment,
		minimalFile,
		minimalFile + "  autoscaling: {min: 1, max: 3}\nnetwork: {mode: existing, vpc_id: vpc-0a1b2c3d, subnet_ids: [subnet-0a1b2c3d]}\n",
		"a: &x [*x]\n",
		"name: &n demo\naws: {account_id: *n}\n",
		"worker: {<<: {cpu: 1}}\n",
		"- 1\n- 2\n",
		"---\n---\n",
		"name: [\n",
		"tags: {? [a]: b}\n",
		"worker: {env: {A: {B: c}}}\n",
		"\t\n",
	} {
		f.Add([]byte(seed))
	}
	for _, name := range []string{"staging.yaml", "production.yaml"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "environments", name)); err == nil {
			f.Add(data)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := Load(path)
		if (env == nil) == (err == nil) {
			t.Fatalf("Load returned env %v and error %v; want exactly one", env != nil, err)
		}
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("error %T %v is not a non-empty *Errors", err, err)
			}
			for _, p := range errs.Problems {
				if p.File != path || p.Line < 1 || p.Message == "" {
					t.Fatalf("problem without file, line or message: %+v", p)
				}
			}
			return
		}
		if !nameRE.MatchString(env.Name) || FargateMemory[env.Worker.CPU] == nil || env.HealthGate.Timeout < MinGateTimeout {
			t.Fatalf("Load accepted an invalid environment: %+v", env)
		}
	})
}
