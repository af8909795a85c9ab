package simtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/deploybot/deploybot/internal/awssim"
	"github.com/deploybot/deploybot/internal/prefectsim"
)

// Flow runs through the simulated worker (internal/prefectsim/simworker.go):
// the flow-run roles, the worker's permissions to submit runs, the ECS
// observer's queue and rule (docs/research/prefect-flow-runs.md §A.8, §B.4),
// the pool's job template, and the Prefect calls that make and watch a run.

// FlowRunRoles are a flow run's execution role (the ECS managed policy,
// the Prefect key's secret) and task role (no permissions).
type FlowRunRoles struct{ Execution, Task string }

// CreateFlowRunRoles creates the flow-run roles of the stack's environment.
func (ws *WorkerStack) CreateFlowRunRoles(tb testing.TB) FlowRunRoles {
	tb.Helper()
	r := FlowRunRoles{
		Execution: ws.CreateRole(tb, "deploybot-"+ws.Env+"-flow-run-execution",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+ws.Secret+`"}]}`,
			awssim.ECSTaskExecutionRolePolicyARN),
		Task: ws.CreateRole(tb, "deploybot-"+ws.Env+"-flow-run-task", ""),
	}
	ws.World.Advance(ws.World.AWS.Timings().IAMPropagation)
	return r
}

// WorkerRunPolicy is the worker task role's policy for submitting and
// observing flow runs (§A.8): ECS task definitions and tasks, the VPC
// look-ups, PassRole on the flow-run roles for ECS tasks, the observer's
// queue (queueARN, "" for none) and the crash-log read.
func WorkerRunPolicy(roles FlowRunRoles, queueARN string) string {
	stmts := []string{
		`{"Effect":"Allow","Action":["ecs:RegisterTaskDefinition","ecs:DescribeTaskDefinition","ecs:DeregisterTaskDefinition","ecs:RunTask","ecs:StopTask","ecs:DescribeTasks","ecs:TagResource"],"Resource":"*"}`,
		`{"Effect":"Allow","Action":["ec2:DescribeVpcs","ec2:DescribeSubnets"],"Resource":"*"}`,
		`{"Effect":"Allow","Action":"iam:PassRole","Resource":["` + roles.Execution + `","` + roles.Task + `"],"Condition":{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}}`,
		`{"Effect":"Allow","Action":"logs:GetLogEvents","Resource":"*"}`,
	}
	if queueARN != "" {
		stmts = append(stmts, `{"Effect":"Allow","Action":["sqs:GetQueueUrl","sqs:ReceiveMessage","sqs:DeleteMessage","sqs:ChangeMessageVisibility","sqs:GetQueueAttributes"],"Resource":"`+queueARN+`"}`)
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// SetTaskRolePolicy replaces the worker task role's inline policy (IAM
// reads the new one at once for the role's sessions).
func (ws *WorkerStack) SetTaskRolePolicy(tb testing.TB, policy string) {
	tb.Helper()
	name := ws.TaskRole[strings.LastIndex(ws.TaskRole, "/")+1:]
	if _, err := ws.IAM.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
		tb.Fatal(err)
	}
	ws.TaskRolePolicy = policy
}

// Observer is the ECS observer's infrastructure as Prefect's stack makes it
// (§B.4): the queue and its dead-letter queue, a rule sending the cluster's
// task state changes to the queue, and a queue policy letting that rule
// (aws:SourceArn) send.
type Observer struct{ Queue, QueueURL, QueueARN, DLQARN, Rule, RuleARN string }

// CreateObserver makes the observer's queue and rule for the stack's
// cluster; withPolicy false leaves the queue without its policy, so that
// EventBridge drops the events.
func (ws *WorkerStack) CreateObserver(tb testing.TB, withPolicy bool) Observer {
	tb.Helper()
	ctx := context.Background()
	cfg := ws.World.AWS.Config()
	sq, eb := sqs.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)
	o := Observer{Queue: ws.Pool + "-ecs-events", Rule: ws.Pool + "-ecs-task-events"}
	dlq, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(o.Queue + "-dlq"),
		Attributes: map[string]string{"MessageRetentionPeriod": "1209600", "VisibilityTimeout": "60"}})
	if err != nil {
		tb.Fatal(err)
	}
	o.DLQARN = queueARN(tb, sq, aws.ToString(dlq.QueueUrl))
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(o.Queue), Attributes: map[string]string{
		"MessageRetentionPeriod": "604800", "VisibilityTimeout": "300",
		"RedrivePolicy": `{"deadLetterTargetArn":"` + o.DLQARN + `","maxReceiveCount":3}`}})
	if err != nil {
		tb.Fatal(err)
	}
	o.QueueURL = aws.ToString(q.QueueUrl)
	o.QueueARN = queueARN(tb, sq, o.QueueURL)
	cluster, err := ws.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{ws.Cluster}})
	if err != nil || len(cluster.Clusters) == 0 {
		tb.Fatalf("cluster %s: %v", ws.Cluster, err)
	}
	pattern := `{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"clusterArn":["` + aws.ToString(cluster.Clusters[0].ClusterArn) + `"]}}`
	rule, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(o.Rule), EventPattern: aws.String(pattern)})
	if err != nil {
		tb.Fatal(err)
	}
	o.RuleARN = aws.ToString(rule.RuleArn)
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(o.Rule), Targets: []ebtypes.Target{{Id: aws.String("Target0"), Arn: aws.String(o.QueueARN)}}}); err != nil {
		tb.Fatal(err)
	}
	if withPolicy {
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":["sqs:GetQueueAttributes","sqs:GetQueueUrl","sqs:SendMessage"],"Resource":"` +
			o.QueueARN + `","Condition":{"ArnEquals":{"aws:SourceArn":"` + o.RuleARN + `"}}}]}`
		if _, err := sq.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(o.QueueURL), Attributes: map[string]string{"Policy": policy}}); err != nil {
			tb.Fatal(err)
		}
	}
	return o
}

func queueARN(tb testing.TB, sq *sqs.Client, url string) string {
	tb.Helper()
	out, err := sq.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		tb.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

// CreateLogGroup creates a CloudWatch Logs group with the account's admin.
func (ws *WorkerStack) CreateLogGroup(tb testing.TB, name string) {
	tb.Helper()
	if _, err := cloudwatchlogs.NewFromConfig(ws.World.AWS.Config()).CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name)}); err != nil {
		tb.Fatal(err)
	}
}

// ECSTemplate is Prefect's default ECS base job template with the given
// top-level variable defaults (the only defaults the worker uses, §A.4 and
// fact 2).
func ECSTemplate(defaults map[string]any) map[string]any {
	t := prefectsim.ECSDefaultTemplate()
	props := t["variables"].(map[string]any)["properties"].(map[string]any)
	for k, v := range defaults {
		p, _ := props[k].(map[string]any)
		if p == nil {
			p = map[string]any{}
			props[k] = p
		}
		p["default"] = v
	}
	return t
}

// SetPoolTemplate PATCHes the pool's base job template.
func (w *World) SetPoolTemplate(tb testing.TB, pool string, template map[string]any) {
	tb.Helper()
	if st, body := w.PrefectDo(tb, "PATCH", "/work_pools/"+pool, map[string]any{"base_job_template": template}); st != http.StatusNoContent {
		tb.Fatalf("PATCH pool %s: %d %v", pool, st, body)
	}
}

// PrefectDo sends one request to the simulated Prefect API (its Cloud URL,
// with the World's key) and returns the status and the decoded JSON body
// (nil when empty; a list is under "list").
func (w *World) PrefectDo(tb testing.TB, method, path string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.Prefect.URL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.PrefectKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(raw)) == 0 {
		return resp.StatusCode, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		tb.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if m, ok := v.(map[string]any); ok {
		return resp.StatusCode, m
	}
	return resp.StatusCode, map[string]any{"list": v}
}

// SmokeFlowSource is docs/research/prefect-flow-runs.md §D.2's flow.
const SmokeFlowSource = "from prefect import flow\n\n\n@flow(name=\"deploybot-smoke\", log_prints=True)\ndef smoke():\n    print(\"deploybot smoke ok\")\n"

// SmokeDeployment upserts §D.2's deployment "smoke" of flow
// "deploybot-smoke" in pool and queue with the given job variables and
// returns its id. script is the pull step's script ("" for the one that
// writes SmokeFlowSource to smoke.py).
func (w *World) SmokeDeployment(tb testing.TB, pool, queue string, jobVariables map[string]any, script string) string {
	tb.Helper()
	st, f := w.PrefectDo(tb, "POST", "/flows/", map[string]any{"name": "deploybot-smoke"})
	if st != http.StatusCreated && st != http.StatusOK {
		tb.Fatalf("POST /flows/: %d %v", st, f)
	}
	if script == "" {
		script = SmokeScript(SmokeFlowSource)
	}
	if jobVariables == nil {
		jobVariables = map[string]any{}
	}
	st, d := w.PrefectDo(tb, "POST", "/deployments/", map[string]any{
		"name": "smoke", "flow_id": f["id"], "work_pool_name": pool, "work_queue_name": queue, "entrypoint": "smoke.py:smoke",
		"pull_steps": []any{map[string]any{"prefect.deployments.steps.run_shell_script": map[string]any{"id": "write-smoke-flow", "stream_output": true, "script": script}}},
		"parameters": map[string]any{}, "parameter_openapi_schema": map[string]any{"type": "object", "properties": map[string]any{}},
		"enforce_parameter_schema": false, "job_variables": jobVariables, "paused": false, "tags": []any{"deploybot"},
	})
	if st != http.StatusCreated && st != http.StatusOK {
		tb.Fatalf("POST /deployments/: %d %v", st, d)
	}
	return d["id"].(string)
}

// SmokeScript is the pull-step script of §D.2 writing source to smoke.py.
func SmokeScript(source string) string {
	return `python -c "import base64,pathlib;pathlib.Path('smoke.py').write_bytes(base64.b64decode('` + base64.StdEncoding.EncodeToString([]byte(source)) + `'))"`
}

// CreateFlowRun creates a run of a deployment (POST
// /deployments/{id}/create_flow_run with body) and returns its id.
func (w *World) CreateFlowRun(tb testing.TB, deploymentID string, body map[string]any) string {
	tb.Helper()
	if body == nil {
		body = map[string]any{}
	}
	st, r := w.PrefectDo(tb, "POST", "/deployments/"+deploymentID+"/create_flow_run", body)
	if st != http.StatusCreated && st != http.StatusOK {
		tb.Fatalf("create_flow_run: %d %v", st, r)
	}
	return r["id"].(string)
}

// FlowRun reads a run (GET /flow_runs/{id}).
func (w *World) FlowRun(tb testing.TB, id string) map[string]any {
	tb.Helper()
	st, r := w.PrefectDo(tb, "GET", "/flow_runs/"+id, nil)
	if st != http.StatusOK {
		tb.Fatalf("GET /flow_runs/%s: %d %v", id, st, r)
	}
	return r
}

// WaitFlowRun advances the clock 5 s at a time until the run's state is
// final or timeout has passed, and returns the run as last read.
func (w *World) WaitFlowRun(tb testing.TB, id string, timeout time.Duration) map[string]any {
	tb.Helper()
	deadline := w.Clock.Now().Add(timeout)
	for {
		r := w.FlowRun(tb, id)
		switch r["state_type"] {
		case "COMPLETED", "FAILED", "CRASHED", "CANCELLED":
			return r
		}
		if !w.Clock.Now().Before(deadline) {
			return r
		}
		w.Advance(5 * time.Second)
	}
}

// FlowRunLogs returns a run's log messages, oldest first (POST /logs/filter).
func (w *World) FlowRunLogs(tb testing.TB, id string) []string {
	tb.Helper()
	st, r := w.PrefectDo(tb, "POST", "/logs/filter", map[string]any{"logs": map[string]any{"flow_run_id": map[string]any{"any_": []any{id}}},
		"sort": "TIMESTAMP_ASC", "limit": 200})
	if st != http.StatusOK {
		tb.Fatalf("POST /logs/filter: %d %v", st, r)
	}
	var out []string
	for _, l := range r["list"].([]any) {
		out = append(out, l.(map[string]any)["message"].(string))
	}
	return out
}

// StateMessage is a run's state message ("" for none).
func StateMessage(run map[string]any) string {
	st, _ := run["state"].(map[string]any)
	m, _ := st["message"].(string)
	return m
}

// SetRolePolicy replaces a role's inline policy "p".
func (ws *WorkerStack) SetRolePolicy(tb testing.TB, roleARN, policy string) {
	tb.Helper()
	name := roleARN[strings.LastIndex(roleARN, "/")+1:]
	if _, err := ws.IAM.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(policy)}); err != nil {
		tb.Fatal(err)
	}
}
