package awssim

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// Authorization of RunTask and StopTask (Service Authorization Reference,
// Amazon ECS: RunTask is authorized on the task definition, StopTask on the
// task, both with the ecs:cluster condition key; RunTask's "Dependent
// actions" column lists iam:PassRole): passing the task's roles to ECS
// needs iam:PassRole on each, with iam:PassedToService
// ecs-tasks.amazonaws.com (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html).

func (w *World) standaloneTaskAuthz(params any) (string, map[string]string, bool) {
	switch in := params.(type) {
	case *ecs.RunTaskInput:
		td := aws.ToString(in.TaskDefinition)
		w.Mu.Lock()
		if found := w.findTD(td); found != nil {
			td = aws.ToString(found.Def.TaskDefinitionArn)
		} else if !strings.HasPrefix(td, "arn:") {
			td = w.arn("ecs", "task-definition/"+td)
		}
		w.Mu.Unlock()
		return td, map[string]string{"ecs:cluster": w.ecsCluster(in.Cluster)}, true
	case *ecs.StopTaskInput:
		t := aws.ToString(in.Task)
		if !strings.HasPrefix(t, "arn:") {
			t = w.arn("ecs", "task/"+lastSegment(w.ecsCluster(in.Cluster))+"/"+t)
		}
		return t, map[string]string{"ecs:cluster": w.ecsCluster(in.Cluster)}, true
	}
	return "", nil, false
}

// runTaskPassRoles are the roles a RunTask passes: the task definition's
// execution and task roles, and the overrides'.
func (w *World) runTaskPassRoles(in *ecs.RunTaskInput) []iampolicy.Request {
	var roles []string
	w.Mu.Lock()
	if td := w.findTD(aws.ToString(in.TaskDefinition)); td != nil {
		roles = append(roles, aws.ToString(td.Def.ExecutionRoleArn), aws.ToString(td.Def.TaskRoleArn))
	}
	w.Mu.Unlock()
	if o := in.Overrides; o != nil {
		roles = append(roles, aws.ToString(o.TaskRoleArn), aws.ToString(o.ExecutionRoleArn))
	}
	var out []iampolicy.Request
	seen := map[string]bool{}
	for _, r := range roles {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, iampolicy.Request{Action: "iam:PassRole", Resource: r,
			Context: map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
	}
	// Tags on the new task are also authorized as ecs:TagResource for
	// that create action (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
	// lists RunTask). The simulated worker's RunTask is not deploybot's, so
	// this lives here rather than in dependent.go's table.
	if len(in.Tags) > 0 {
		ctx := map[string]string{"ecs:CreateAction": "RunTask"}
		for _, t := range in.Tags {
			ctx["aws:RequestTag/"+aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		out = append(out, iampolicy.Request{Action: "ecs:TagResource", Context: ctx})
	}
	return out
}
