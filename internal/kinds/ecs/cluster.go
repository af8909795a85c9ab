// Package ecs holds the ECS kinds of a stack: the cluster, the worker's
// task-definition family and its Fargate service.
package ecs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/inventory"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// Kind names.
const (
	KindCluster        resource.KindName = "ecs_cluster"
	KindTaskDefinition resource.KindName = "task_definition"
	KindService        resource.KindName = "ecs_service"
)

// x is what the ECS kinds get: the ECS client only.
type x = resource.Context[awsapi.ECSAPI]

func connect(a resource.APIs) (awsapi.ECSAPI, error) { return a.AWS.ECS, nil }

// ClusterSpec is the ECS cluster.
type ClusterSpec struct {
	Name              string
	ContainerInsights bool
}

// ClusterModel is what a plan compares of a cluster.
type ClusterModel struct {
	ContainerInsights string `attr:"container_insights"`
}

// Normalize reads ECS's "enhanced" observability as on, and no setting as off.
func (m *ClusterModel) Normalize() {
	switch m.ContainerInsights {
	case "enabled", "enhanced":
		m.ContainerInsights = "enabled"
	default:
		m.ContainerInsights = "disabled"
	}
}

// Cluster is the cluster kind.
var Cluster = resource.Define[ClusterSpec, ClusterModel, struct{}, awsapi.ECSAPI](KindCluster, clusterKind{}, connect)

type clusterKind struct{}

type (
	cluster      = resource.Typed[ClusterSpec]
	foundCluster = resource.Found[ClusterModel, struct{}]
)

func insights(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func (clusterKind) Desired(r *cluster, _ resource.Refs) ClusterModel {
	return ClusterModel{ContainerInsights: insights(r.Spec.ContainerInsights)}
}

// describeCluster returns the ACTIVE cluster, or nil: a MISSING failure or
// an INACTIVE cluster (deleted clusters linger as INACTIVE) is absent.
func describeCluster(ctx context.Context, x *x, name string) (*ecstypes.Cluster, error) {
	out, err := x.API.DescribeClusters(ctx, &awsecs.DescribeClustersInput{
		Clusters: []string{name},
		Include:  []ecstypes.ClusterField{ecstypes.ClusterFieldTags, ecstypes.ClusterFieldSettings},
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeClusters %s: %w", name, err)
	}
	for i := range out.Clusters {
		c := &out.Clusters[i]
		if aws.ToString(c.ClusterName) == name && aws.ToString(c.Status) != "INACTIVE" {
			return c, nil
		}
	}
	return nil, nil
}

func (clusterKind) Read(ctx context.Context, x *x, r *cluster) (*foundCluster, error) {
	c, err := describeCluster(ctx, x, r.Name)
	if err != nil || c == nil {
		return nil, err
	}
	arn := aws.ToString(c.ClusterArn)
	f := &foundCluster{ID: arn, ARN: arn, Tags: awstags.ECSMap(c.Tags),
		Outputs: resource.Outputs{"arn": arn, "name": r.Name},
		// Its tasks (the worker's, and the flow runs it starts) go with
		// it: ECS deletes no cluster that still runs any.
		Covers: []string{strings.Replace(arn, ":cluster/", ":task/", 1) + "/"}}
	for _, s := range c.Settings {
		if s.Name == ecstypes.ClusterSettingNameContainerInsights {
			f.Model.ContainerInsights = aws.ToString(s.Value)
		}
	}
	return f, nil
}

// ARNTypes and Adopt: a cluster tagged for the environment that its stack
// does not have (arn:…:cluster/NAME: one an earlier version or a person
// made) is read by its name, and deleted like a leftover; ECS refuses to
// delete one that still has services or tasks, and Delete waits for them.
func (k clusterKind) ARNTypes() []string { return []string{"ecs:cluster"} }

func (k clusterKind) Adopt(ctx context.Context, x *x, arn string) (*cluster, *foundCluster, error) {
	name := strings.TrimPrefix(inventory.Resource(arn), "cluster/")
	c := &cluster{Name: name, Spec: &ClusterSpec{Name: name}}
	f, err := k.Read(ctx, x, c)
	if err != nil || f == nil {
		return nil, nil, err
	}
	return c, f, nil
}

// needsServiceLinkedRole: the first cluster of an account waits for the
// ECS service-linked role (docs/research/aws-ecs.md §5 ecs/cluster.go
// retryClusterCreate, §5.2).
var needsServiceLinkedRole = awserr.CodeWithMessage("InvalidParameterException", "Unable to assume the service linked role")

func (clusterKind) Create(ctx context.Context, x *x, r *cluster, _ resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	out, err := retry.When(ctx, x.Waits(r.Address, 2*time.Minute, resource.RetryEvery), "CreateCluster", needsServiceLinkedRole,
		func() (*awsecs.CreateClusterOutput, error) {
			return x.API.CreateCluster(ctx, &awsecs.CreateClusterInput{
				ClusterName: aws.String(s.Name),
				Settings: []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights,
					Value: aws.String(insights(s.ContainerInsights))}},
				Tags: awstags.ECSList(r.Tags),
			})
		})
	if err != nil {
		return nil, fmt.Errorf("CreateCluster %s: %w", s.Name, err)
	}
	// CreateCluster answers an existing ACTIVE cluster of that name with the
	// cluster itself: make sure it is ours.
	if !resource.IsOurs(r.Tags, awstags.ECSMap(out.Cluster.Tags)) {
		return nil, fmt.Errorf("ECS cluster %s %w", s.Name, resource.ErrNotOurs)
	}
	return resource.Outputs{"arn": aws.ToString(out.Cluster.ClusterArn), "name": s.Name}, nil
}

func (clusterKind) Update(ctx context.Context, x *x, r *cluster, d *resource.Delta[ClusterModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if d.Desired.ContainerInsights != d.Live.ContainerInsights {
		if _, err := x.API.UpdateClusterSettings(ctx, &awsecs.UpdateClusterSettingsInput{
			Cluster:  aws.String(r.Spec.Name),
			Settings: []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights, Value: aws.String(d.Desired.ContainerInsights)}},
		}); err != nil {
			return nil, fmt.Errorf("UpdateClusterSettings %s: %w", r.Spec.Name, err)
		}
	}
	if err := awstags.ECS(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

func (clusterKind) Delete(ctx context.Context, x *x, r *cluster, _ *foundCluster) error {
	// docs/research/aws-ecs.md §5 (ecs/cluster.go Delete): retry while services,
	// tasks or an update still hold the cluster, up to 10 minutes.
	err := retry.Do(ctx, x.Waits(r.Address, 10*time.Minute, resource.RetryEvery), "DeleteCluster", awserr.IsDependency, func() error {
		_, err := x.API.DeleteCluster(ctx, &awsecs.DeleteClusterInput{Cluster: aws.String(r.Name)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteCluster %s: %w", r.Name, err)
	}
	return nil
}
