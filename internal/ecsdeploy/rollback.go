package ecsdeploy

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// RollBack points the service at task definition to (the revision it ran
// before from) and returns the deployment that starts, to Look at or Wait
// for. Only the task definition changes: the rest of the service is as the
// apply left it.
func (w *Watcher) RollBack(ctx context.Context, s Service, to, from string) (*Deployment, error) {
	d := &Deployment{Service: s, TaskDefinition: to, Previous: from, Since: w.Clock.Now()}
	out, err := w.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster: aws.String(s.Cluster), Service: aws.String(s.Name), TaskDefinition: aws.String(to),
	})
	if err != nil {
		return nil, fmt.Errorf("roll %s back to %s: UpdateService: %w", s, ShortTaskDefinition(to), err)
	}
	if out.Service != nil {
		d.ID = PrimaryDeploymentID(out.Service.Deployments)
	}
	return d, nil
}

// TaskDefinitionEnv reads the variable name of the task definition's
// containers ("" when none sets it).
func (w *Watcher) TaskDefinitionEnv(ctx context.Context, taskDefinition, name string) (string, error) {
	out, err := w.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(taskDefinition)})
	if err != nil {
		return "", fmt.Errorf("describe task definition %s: %w", ShortTaskDefinition(taskDefinition), err)
	}
	if out.TaskDefinition == nil {
		return "", nil
	}
	for _, c := range out.TaskDefinition.ContainerDefinitions {
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) == name {
				return aws.ToString(kv.Value), nil
			}
		}
	}
	return "", nil
}
