package resources

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// ClusterKind is the ECS cluster.
type ClusterKind struct{}

func insights(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func (ClusterKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := mustSpec[stack.ClusterSpec](r)
	a := resource.Attrs{"container_insights": {Value: insights(s.ContainerInsights)}}
	addTags(a, r.Tags)
	return a
}

// describeCluster returns the ACTIVE cluster, or nil: a MISSING failure or
// an INACTIVE cluster (deleted clusters linger as INACTIVE) is absent.
func describeCluster(ctx context.Context, x *resource.Ctx, name string) (*ecstypes.Cluster, error) {
	out, err := x.AWS.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{
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

func (ClusterKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	c, err := describeCluster(ctx, x, r.Name)
	if err != nil || c == nil {
		return nil, err
	}
	tags := ecsTags(c.Tags)
	on := false
	for _, s := range c.Settings {
		if s.Name == ecstypes.ClusterSettingNameContainerInsights {
			on = aws.ToString(s.Value) == "enabled" || aws.ToString(s.Value) == "enhanced"
		}
	}
	a := resource.Attrs{"container_insights": {Value: insights(on)}}
	addTags(a, tags)
	arn := aws.ToString(c.ClusterArn)
	return &resource.Live{ID: arn, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": arn, "name": r.Name}, Raw: tags}, nil
}

func (ClusterKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.ClusterSpec](r)
	if err != nil {
		return nil, err
	}
	var out *ecs.CreateClusterOutput
	// docs/research/aws-ecs.md §5 (ecs/cluster.go retryClusterCreate) and §5.2: the
	// first cluster of an account waits for the ECS service-linked role.
	err = retry(ctx, x, r.Address, "CreateCluster", 2*time.Minute,
		codeWithMessage("InvalidParameterException", "Unable to assume the service linked role"),
		func() error {
			var err error
			out, err = x.AWS.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{
				ClusterName: aws.String(s.Name),
				Settings: []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights,
					Value: aws.String(insights(s.ContainerInsights))}},
				Tags: ecsTagList(r.Tags),
			})
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("CreateCluster %s: %w", s.Name, err)
	}
	// CreateCluster answers an existing ACTIVE cluster of that name with the
	// cluster itself: make sure it is ours.
	if !isOurs(r, ecsTags(out.Cluster.Tags)) {
		return nil, fmt.Errorf("ECS cluster %s %w", s.Name, errConflict)
	}
	arn := aws.ToString(out.Cluster.ClusterArn)
	return resource.Outputs{"arn": arn, "name": s.Name}, nil
}

func (ClusterKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := specOf[stack.ClusterSpec](r)
	if err != nil {
		return nil, err
	}
	if changedPaths(changed)["container_insights"] {
		if _, err := x.AWS.ECS.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{
			Cluster:  aws.String(s.Name),
			Settings: []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights, Value: aws.String(insights(s.ContainerInsights))}},
		}); err != nil {
			return nil, fmt.Errorf("UpdateClusterSettings %s: %w", s.Name, err)
		}
	}
	if err := updateECSTags(ctx, x, live.ID, r.Tags, live.Raw.(map[string]string)); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

func (ClusterKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	// docs/research/aws-ecs.md §5 (ecs/cluster.go Delete): retry while services,
	// tasks or an update still hold the cluster, up to 10 minutes.
	err := retry(ctx, x, r.Address, "DeleteCluster", 10*time.Minute, awserr.IsDependency, func() error {
		_, err := x.AWS.ECS.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(r.Name)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteCluster %s: %w", r.Name, err)
	}
	return nil
}

func ecsTags(tags []ecstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func ecsTagList(tags map[string]string) []ecstypes.Tag {
	var out []ecstypes.Tag
	for _, k := range sortedTagKeys(tags) {
		out = append(out, ecstypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// updateECSTags makes the tags of an ECS resource (cluster, service, task
// definition) the desired ones.
func updateECSTags(ctx context.Context, x *resource.Ctx, arn string, desired, live map[string]string, ignore ...string) error {
	set, remove := tagChanges(desired, live, ignore...)
	if len(set) > 0 {
		if _, err := x.AWS.ECS.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: ecsTagList(set)}); err != nil {
			return fmt.Errorf("TagResource %s: %w", arn, err)
		}
	}
	if len(remove) > 0 {
		if _, err := x.AWS.ECS.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: remove}); err != nil {
			return fmt.Errorf("UntagResource %s: %w", arn, err)
		}
	}
	return nil
}
