package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
)

// activeRevisions lists the ACTIVE revisions of a task-definition family.
func (x *world) activeRevisions(family string) []string {
	x.tb.Helper()
	out, err := awsapi.New(x.w.Config()).ECS.ListTaskDefinitions(context.Background(), &awsecs.ListTaskDefinitionsInput{
		FamilyPrefix: aws.String(family), Status: ecstypes.TaskDefinitionStatusActive})
	if err != nil {
		x.tb.Fatal(err)
	}
	return out.TaskDefinitionArns
}

// TestE2EUpdateCrashRegistersNoDuplicateRevision kills an update of the
// task definition after each of its writes, then runs it again: the re-run
// converges and the family has one new revision, not two. (A run that dies
// after RegisterTaskDefinition and before UpdateService leaves the new
// revision unused; the re-run's plan compares with the revision the service
// runs and asks for the same definition again, and registering is not
// idempotent.)
func TestE2EUpdateCrashRegistersNoDuplicateRevision(t *testing.T) {
	t.Parallel()
	const family = "deploybot-demo-worker"
	clean := newWorld(t)
	clean.apply(clean.env("demo"))
	clean.resetCalls()
	clean.apply(clean.env("demo", "cpu: 512", "cpu: 1024", "memory: 1024", "memory: 2048"))
	n := len(clean.writes())
	if got := clean.activeRevisions(family); len(got) != 2 {
		t.Fatalf("a clean update left revisions %v", got)
	}
	registers := 0
	for _, w := range clean.writes() {
		if strings.Contains(w, "RegisterTaskDefinition") {
			registers++
		}
	}
	if registers != 1 || n < 2 {
		t.Fatalf("a clean update made %d writes, %d registrations: %v", n, registers, clean.writes())
	}
	for k := 1; k < n; k++ {
		t.Run(fmt.Sprint("after write ", k), func(t *testing.T) {
			t.Parallel()
			x := newWorld(t)
			x.apply(x.env("demo"))
			env := x.env("demo", "cpu: 512", "cpu: 1024", "memory: 1024", "memory: 2048")
			x.crashAfterWrite(k, "update", x.tryApply, env)
			x.apply(env)
			x.wantConverged("not converged", env)
			if got := x.activeRevisions(family); len(got) != 2 {
				t.Fatalf("revisions after a crash and a re-run: %v; a clean update leaves 2", got)
			}
		})
	}
}
