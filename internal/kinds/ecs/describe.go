package ecs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/resource"
)

// describeService returns the service unless it is missing or INACTIVE
// (deleted services linger as INACTIVE, then MISSING: docs/research/aws-ecs.md
// §4.3). The task definition's Read asks the same question as the
// service's (which revision runs), so a plan shares the answer.
func describeService(ctx context.Context, x *x, cluster, name string) (*ecstypes.Service, error) {
	out, err := resource.Shared(x, "ecs DescribeServices "+cluster+"/"+name, func() (*awsecs.DescribeServicesOutput, error) {
		return x.API.DescribeServices(ctx, &awsecs.DescribeServicesInput{
			Cluster:  aws.String(cluster),
			Services: []string{name},
			Include:  []ecstypes.ServiceField{ecstypes.ServiceFieldTags},
		})
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeServices %s/%s: %w", cluster, name, err)
	}
	for i := range out.Services {
		s := &out.Services[i]
		if aws.ToString(s.ServiceName) == name && aws.ToString(s.Status) != "INACTIVE" {
			return s, nil
		}
	}
	return nil, nil
}

// taskDefinitionOf is the task definition a service runs ("" without one).
func taskDefinitionOf(s *ecstypes.Service) string {
	if s == nil {
		return ""
	}
	return aws.ToString(s.TaskDefinition)
}
