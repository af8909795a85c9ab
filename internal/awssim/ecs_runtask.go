package awssim

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// RunTask and StopTask: the standalone tasks a Prefect ECS worker launches
// for flow runs and stops on cancellation (docs/research/prefect-flow-runs.md
// §A.7; https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html,
// API_StopTask.html). A standalone task lives like a service's (ecs_sched.go)
// but no scheduler replaces it and no circuit breaker counts it.

func init() {
	Handle(func(ctx context.Context, w *World, in *ecs.RunTaskInput) (*ecs.RunTaskOutput, error) {
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		td := w.findTD(aws.ToString(in.TaskDefinition))
		if td == nil {
			return nil, tdNotFound()
		}
		if td.Def.Status != ecstypes.TaskDefinitionStatusActive {
			return nil, ecsClient("TaskDefinition is inactive")
		}
		if in.LaunchType != "" && len(in.CapacityProviderStrategy) > 0 {
			return nil, ecsInvalid("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
		}
		fargate := in.LaunchType == ecstypes.LaunchTypeFargate
		for _, cp := range in.CapacityProviderStrategy {
			fargate = fargate || strings.HasPrefix(aws.ToString(cp.CapacityProvider), "FARGATE")
		}
		if !fargate {
			return nil, ecsInvalid("The simulated account has no container instances: use launchType FARGATE.")
		}
		compatible := false
		for _, cmp := range td.Def.Compatibilities {
			compatible = compatible || cmp == ecstypes.CompatibilityFargate
		}
		if !compatible {
			return nil, ecsInvalid("Task definition does not support launch_type FARGATE.")
		}
		count := int(aws.ToInt32(in.Count))
		if count == 0 {
			count = 1
		}
		if count < 1 || count > 10 {
			return nil, ecsInvalid("Count must be between 1 and 10.")
		}
		if err := w.validateNetwork(in.NetworkConfiguration); err != nil {
			return nil, err
		}
		if o := in.Overrides; o != nil {
			for _, co := range o.ContainerOverrides {
				found := false
				for _, cd := range td.Def.ContainerDefinitions {
					found = found || aws.ToString(cd.Name) == aws.ToString(co.Name)
				}
				if !found {
					return nil, ecsInvalid("Override for container named " + aws.ToString(co.Name) + " is not a container in the TaskDefinition.")
				}
			}
			if o.Cpu != nil || o.Memory != nil {
				cpu, errC := strconv.Atoi(firstNonEmpty(aws.ToString(o.Cpu), aws.ToString(td.Def.Cpu)))
				mem, errM := strconv.Atoi(firstNonEmpty(aws.ToString(o.Memory), aws.ToString(td.Def.Memory)))
				if errC != nil || errM != nil || !fargateMemoryOK(cpu, mem) {
					return nil, ecsClient("No Fargate configuration exists for given values: " + aws.ToString(o.Cpu) + " CPU, " + aws.ToString(o.Memory) + " memory. See the Amazon ECS documentation for the valid values.")
				}
			}
		}
		if len(in.Tags) > 50 {
			return nil, ecsInvalid("Too many tags: at most 50 tags may be specified.")
		}
		now := w.Clock.Now()
		out := &ecs.RunTaskOutput{Tasks: []ecstypes.Task{}, Failures: []ecstypes.Failure{}}
		for i := 0; i < count; i++ {
			t := w.placeTask(c.Name, td, in.NetworkConfiguration.AwsvpcConfiguration, now)
			t.Overrides = clone(in.Overrides)
			t.StartedBy, t.Group = aws.ToString(in.StartedBy), aws.ToString(in.Group)
			if t.Group == "" {
				t.Group = "family:" + aws.ToString(td.Def.Family)
			}
			t.Tags = ecsTags.merge(nil, in.Tags)
			if in.PropagateTags == ecstypes.PropagateTagsTaskDefinition {
				t.Tags = ecsTags.merge(t.Tags, td.Tags)
			}
			if o := t.Overrides; o != nil && aws.ToString(o.Cpu) != "" {
				t.Def.Cpu = o.Cpu
			}
			if o := t.Overrides; o != nil && aws.ToString(o.Memory) != "" {
				t.Def.Memory = o.Memory
			}
			if msg := w.assumeTaskRoles(t, now); msg != "" {
				w.failTask(t, now, ecstypes.TaskStopCodeTaskFailedToStart, msg, nil)
			} else {
				t.schedule(now.Add(w.timings.TaskProvisioning), func(at time.Time) { w.taskProvisioned(t, at) })
			}
			out.Tasks = append(out.Tasks, w.taskView(t, true))
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *ecs.StopTaskInput) (*ecs.StopTaskOutput, error) {
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		ref := aws.ToString(in.Task)
		arn := ref
		if !strings.HasPrefix(ref, "arn:") {
			arn = w.ecsARN("task/" + c.Name + "/" + ref)
		}
		t, ok := w.ecs().Tasks[arn]
		if !ok || t.ClusterName != c.Name {
			return nil, ecsInvalid("The referenced task was not found.")
		}
		if len(aws.ToString(in.Reason)) > 255 {
			return nil, ecsInvalid("Reason must be at most 255 characters.")
		}
		reason := aws.ToString(in.Reason)
		if reason == "" {
			reason = "Task stopped by user"
		}
		w.stopTask(t, w.Clock.Now(), ecstypes.TaskStopCodeUserInitiated, reason)
		v := w.taskView(t, false)
		return &ecs.StopTaskOutput{Task: &v}, nil
	})
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
