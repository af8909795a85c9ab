package config

import (
	"strings"
	"testing"

	"github.com/deploybot/deploybot/internal/config/configtest"
)

// TestDerivedNamesFit: with the longest name validation allows, every name
// docs/ARCHITECTURE.md derives from it stays inside its AWS limit.
func TestDerivedNamesFit(t *testing.T) {
	name := "a" + strings.Repeat("b-", (MaxNameLen-2)/2) + "c"
	name = name[:MaxNameLen-1] + "z"
	if len(name) != MaxNameLen || !nameRE.MatchString(name) {
		t.Fatalf("test name %q is not a valid name of the maximum length", name)
	}
	tests := []struct {
		what  string
		value string
		limit int
	}{
		{"ECS cluster", "deploybot-" + name, 255},
		{"task definition family", "deploybot-" + name + "-worker", 255},
		{"log group", "/deploybot/" + name + "/worker", 512},
		{"IAM execution role", "deploybot-" + name + "-execution", 64},
		{"IAM task role", "deploybot-" + name + "-task", 64},
		{"secret", "deploybot/" + name + "/prefect-api-key", 512},
		{"security group", "deploybot-" + name + "-worker", 255},
		{"SSM lock parameter", "/deploybot/" + name + "/lock", 1011},
		{"EC2 Name tag", "deploybot-" + name + "-private-f", 256},
		{"tag deploybot:environment value", name, MaxTagValue},
		{"Cloud Map namespace", name + NamespaceSuffix, 253},
		{"Cloud Map namespace label", name, 63},
	}
	for _, tt := range tests {
		if len(tt.value) > tt.limit {
			t.Errorf("%s %q is %d characters; AWS allows %d", tt.what, tt.value, len(tt.value), tt.limit)
		}
	}
	env, err := Load(writeFile(t, t.TempDir(), "e.yaml", configtest.Edit(configtest.Environment, map[int]string{1: "name: " + name})))
	if err != nil {
		t.Fatalf("a %d-character name must load: %v", MaxNameLen, err)
	}
	if msg := dnsNameProblem(env.ServiceDiscovery.Namespace); msg != "" {
		t.Errorf("default namespace %s: %s", env.ServiceDiscovery.Namespace, msg)
	}
}
