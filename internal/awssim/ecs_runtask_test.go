package awssim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

// A flow-run task as Prefect's ECS worker starts it: RunTask with the
// worker task role's credentials (World.RoleConfig).

// runner is the worker task role, allowed policy.
func (f *ecsFixture) runner(t *testing.T, policy string) *ecs.Client {
	t.Helper()
	if _, err := f.iam.PutRolePolicy(bg, &iam.PutRolePolicyInput{RoleName: aws.String("deploybot-staging-task"), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	return ecs.NewFromConfig(f.w.RoleConfig(f.taskRole, "0123abcd"))
}

func (f *ecsFixture) flowRunTD(t *testing.T, logs map[string]string) string {
	t.Helper()
	c := ecstypes.ContainerDefinition{Name: aws.String("prefect"), Image: aws.String("prefecthq/prefect:3.8.4-python3.12")}
	if logs != nil {
		c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: logs}
	}
	out, err := f.ecs.RegisterTaskDefinition(bg, &ecs.RegisterTaskDefinitionInput{Family: aws.String("prefect_ecs-pool_dep"),
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, NetworkMode: ecstypes.NetworkModeAwsvpc,
		Cpu: aws.String("1024"), Memory: aws.String("2048"), ExecutionRoleArn: aws.String(f.execRole), ContainerDefinitions: []ecstypes.ContainerDefinition{c}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (f *ecsFixture) runTaskInput(td string) *ecs.RunTaskInput {
	return &ecs.RunTaskInput{Cluster: aws.String("deploybot-staging"), TaskDefinition: aws.String(td), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: f.subnets, SecurityGroups: []string{f.sg}, AssignPublicIp: ecstypes.AssignPublicIpEnabled}},
		Overrides: &ecstypes.TaskOverride{TaskRoleArn: aws.String(f.taskRole), ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String("prefect"),
			Command: []string{"prefect", "flow-run", "execute"}, Environment: []ecstypes.KeyValuePair{{Name: aws.String("PREFECT__FLOW_RUN_ID"), Value: aws.String("r-1")}}}}},
		Tags: []ecstypes.Tag{{Key: aws.String("prefect.io/flow-run-id"), Value: aws.String("r-1")}}}
}

const runnerPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:RunTask","ecs:StopTask","ecs:DescribeTasks","ecs:TagResource"],"Resource":"*"},
{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}}]}`

func TestRunTaskStartsAStandaloneTaskWithItsOverridesAndTags(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Hour})
	td := f.flowRunTD(t, nil)
	c := f.runner(t, runnerPolicy)
	out, err := c.RunTask(bg, f.runTaskInput(td))
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	if g := aws.ToString(out.Tasks[0].Group); g != "family:prefect_ecs-pool_dep" {
		t.Errorf("group %q", g)
	}
	f.clk.Advance(2 * time.Minute)
	var view TaskView
	for _, v := range f.w.Tasks() {
		if v.ARN == arn {
			view = v
		}
	}
	if view.LastStatus != "RUNNING" || view.TaskRoleARN != f.taskRole || view.Env["PREFECT__FLOW_RUN_ID"] != "r-1" || view.Tags["prefect.io/flow-run-id"] != "r-1" {
		t.Fatalf("task view %+v", view)
	}
	if strings.Join(view.Command, " ") != "prefect flow-run execute" {
		t.Errorf("command %v: the override replaces the definition's", view.Command)
	}
	// No service replaces a standalone task; StopTask stops it as the user.
	st, err := c.StopTask(bg, &ecs.StopTaskInput{Cluster: aws.String("deploybot-staging"), Task: aws.String(arn), Reason: aws.String("Stopped by Prefect worker")})
	if err != nil {
		t.Fatal(err)
	}
	if st.Task.StopCode != ecstypes.TaskStopCodeUserInitiated || aws.ToString(st.Task.StoppedReason) != "Stopped by Prefect worker" {
		t.Errorf("stopped %s %q", st.Task.StopCode, aws.ToString(st.Task.StoppedReason))
	}
	f.clk.Advance(2 * time.Minute)
	d, err := f.ecs.DescribeTasks(bg, &ecs.DescribeTasksInput{Cluster: aws.String("deploybot-staging"), Tasks: []string{arn}})
	if err != nil || aws.ToString(d.Tasks[0].LastStatus) != "STOPPED" {
		t.Fatalf("after StopTask: %v %v", d, err)
	}
	var calls []string
	for _, call := range f.w.WorkloadCalls() {
		calls = append(calls, call.Operation+" "+call.Principal)
	}
	if len(calls) != 2 || !strings.Contains(calls[0], "assumed-role/deploybot-staging-task/0123abcd") {
		t.Errorf("workload calls %v", calls)
	}
	for _, call := range f.w.Calls() {
		if call.Operation == "RunTask" {
			t.Error("a workload's call is in Calls (deploybot's)")
		}
	}
}

func TestRunTaskErrorsAndAuthorization(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Hour})
	td := f.flowRunTD(t, nil)
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode() + ": " + ae.ErrorMessage()
		}
		return ""
	}
	c := f.runner(t, runnerPolicy)
	in := f.runTaskInput(td)
	in.Cluster = aws.String("nope")
	if _, err := c.RunTask(bg, in); !strings.HasPrefix(code(err), "ClusterNotFoundException: ") {
		t.Errorf("unknown cluster: %v", err)
	}
	in = f.runTaskInput(td)
	in.NetworkConfiguration = nil
	if _, err := c.RunTask(bg, in); code(err) != "InvalidParameterException: Network Configuration must be provided when networkMode 'awsvpc' is specified." {
		t.Errorf("no network: %v", err)
	}
	in = f.runTaskInput(td)
	in.Overrides.ContainerOverrides[0].Name = aws.String("worker")
	if _, err := c.RunTask(bg, in); !strings.Contains(code(err), "is not a container in the TaskDefinition") {
		t.Errorf("override of another container: %v", err)
	}
	// PassRole: the task role passed in the overrides.
	c = f.runner(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:RunTask","ecs:TagResource"],"Resource":"*"},
{"Effect":"Allow","Action":"iam:PassRole","Resource":"`+f.execRole+`"}]}`)
	if _, err := c.RunTask(bg, f.runTaskInput(td)); !strings.Contains(code(err), "iam:PassRole on resource: "+f.taskRole) {
		t.Errorf("without PassRole on the task role: %v", err)
	}
	// Tags need ecs:TagResource for the RunTask create action.
	c = f.runner(t, strings.Replace(runnerPolicy, `,"ecs:TagResource"`, ``, 1))
	if _, err := c.RunTask(bg, f.runTaskInput(td)); !strings.Contains(code(err), "ecs:TagResource") {
		t.Errorf("tags without ecs:TagResource: %v", err)
	}
	// The task's cluster as a condition.
	c = f.runner(t, strings.Replace(runnerPolicy, `"Resource":"*"},`, `"Resource":"*","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:`+f.w.Account+`:cluster/other"}}},`, 1))
	if _, err := c.RunTask(bg, f.runTaskInput(td)); !strings.Contains(code(err), "ecs:RunTask") {
		t.Errorf("RunTask outside the allowed cluster: %v", err)
	}
}

func TestAwslogsNeedsTheGroupAndTheExecutionRolesPermissions(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Hour})
	c := f.runner(t, runnerPolicy)
	reason := func(logs map[string]string) string {
		t.Helper()
		out, err := c.RunTask(bg, f.runTaskInput(f.flowRunTD(t, logs)))
		if err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(3 * time.Minute)
		d, err := f.ecs.DescribeTasks(bg, &ecs.DescribeTasksInput{Cluster: aws.String("deploybot-staging"), Tasks: []string{aws.ToString(out.Tasks[0].TaskArn)}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(d.Tasks[0].LastStatus) + " " + aws.ToString(d.Tasks[0].StoppedReason)
	}
	opts := func(group, create string) map[string]string {
		return map[string]string{"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "prefect-logs", "awslogs-create-group": create}
	}
	if got := reason(opts("/nope", "false")); !strings.Contains(got, "ResourceNotFoundException: The specified log group does not exist.") {
		t.Errorf("missing group: %s", got)
	}
	if got := reason(opts("prefect", "true")); !strings.Contains(got, "is not authorized to perform: logs:CreateLogGroup") {
		t.Errorf("create-group without logs:CreateLogGroup: %s", got)
	}
	if got := reason(opts("/deploybot/staging/worker", "false")); !strings.HasPrefix(got, "RUNNING") {
		t.Errorf("existing group: %s", got)
	}
	streams, err := cloudwatchlogs.NewFromConfig(f.w.Config()).DescribeLogStreams(bg, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/deploybot/staging/worker"), LogStreamNamePrefix: aws.String("prefect-logs/prefect/")})
	if err != nil || len(streams.LogStreams) != 1 {
		t.Errorf("the container's stream <prefix>/<container>/<task id>: %v %v", streams, err)
	}
}
