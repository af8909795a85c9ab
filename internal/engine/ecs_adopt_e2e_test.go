package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

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

// TestE2EECSLeftBehindIsDeleted: an ECS cluster, a service in it and a
// task-definition family tagged for the environment but not in its stack
// (what an earlier version or a hand-run left) are planned for deletion,
// the service before the cluster and the family, instead of being left
// alone as if deploybot had no kind for them; afterwards a plan is empty
// and a destroy proves nothing is left.
func TestE2EECSLeftBehindIsDeleted(t *testing.T) {
	t.Parallel()
	x := newWorld(t)
	env := x.env("demo")
	x.apply(env)
	ctx := context.Background()
	api := awsapi.New(x.w.Config()).ECS
	tags := []ecstypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("demo")}, {Key: aws.String("managed-by"), Value: aws.String("deploybot")}}
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("deploybot-demo-old"), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	td, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{Family: aws.String("deploybot-demo-old-worker"),
		Cpu: aws.String("256"), Memory: aws.String("512"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, Tags: tags,
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("worker"), Image: aws.String("prefecthq/prefect-aws:latest"), Essential: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String("deploybot-demo-old"), ServiceName: aws.String("old-worker"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(0), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: x.subnets, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		Tags:                 tags}); err != nil {
		t.Fatal(err)
	}

	p := x.plan(env)
	want := []string{"ecs_cluster.orphan_deploybot-demo-old", "ecs_service.orphan_old-worker", "task_definition.orphan_deploybot-demo-old-worker_1"}
	var got []string
	for addr, reason := range deletes(p.Plan) {
		got = append(got, addr)
		if !strings.Contains(reason, "left behind") {
			t.Errorf("%s: reason %q", addr, reason)
		}
	}
	if d := cmp.Diff(want, sortedCopy(got)); d != "" {
		t.Fatalf("deletes (-want +got):\n%s\nnotes:\n%s", d, strings.Join(p.Plan.Notes, "\n"))
	}
	rep, err := x.engine().Apply(ctx, p)
	if err != nil {
		t.Fatalf("apply: %v\nprogress:\n%s", err, x.progressText())
	}
	at := map[string]int{}
	for i, s := range rep.Steps {
		if s.Status != "done" && strings.Contains(s.Address, ".orphan_") {
			t.Errorf("step %s: %s", s.Address, s.Status)
		}
		at[s.Address] = i
	}
	if at[want[1]] > at[want[0]] || at[want[1]] > at[want[2]] {
		t.Errorf("the service was not deleted first: %v", rep.Steps)
	}
	x.wantNone("changes after the orphans' delete", summary(x.plan(env).Plan))
	x.destroy(env)
	x.wantNone("left after destroy", inventory(x.w, "demo"))
}
