package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkedIn is the generated file, relative to this package.
var checkedIn = filepath.Join("..", "..", "bootstrap", "actions_gen.go")

// TestCheckedInListIsCurrent: the action list bootstrap grants from is
// exactly the operations of internal/awsapi's interfaces, the only AWS
// calls the engine, the Action and the CLI can make. A method added to (or
// removed from) an interface without `go generate ./internal/bootstrap`
// fails here.
func TestCheckedInListIsCurrent(t *testing.T) {
	want, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(checkedIn)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is out of date; run `go generate ./internal/bootstrap` (-want +got):\n%s", checkedIn, diff)
	}
}

func TestActionsCoverEveryClient(t *testing.T) {
	actions, err := Actions()
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]int{}
	for _, a := range actions {
		p, op, ok := strings.Cut(a, ":")
		if !ok || op == "" {
			t.Errorf("malformed action %q", a)
		}
		prefixes[p]++
	}
	for iface, p := range iamPrefix {
		if prefixes[p] == 0 {
			t.Errorf("%s (%s) contributes no action: is it still in awsapi.Clients?", iface, p)
		}
	}
	// A few operations deploybot is known to call, so that an empty or
	// truncated list cannot pass.
	for _, a := range []string{"ec2:CreateVpc", "ecs:CreateService", "iam:PutRolePolicy", "ssm:PutParameter", "sts:GetCallerIdentity"} {
		if !slices.Contains(actions, a) {
			t.Errorf("the list lacks %s", a)
		}
	}
}
