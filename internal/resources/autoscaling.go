package resources

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// Application Auto Scaling budgets: docs/research/aws-ecs.md §5 (appautoscaling
// target.go/policy.go retry within propagationTimeout, 2m; delete waits
// until the target is not found, 5m).
const (
	autoscalingRetryBudget  = 2 * time.Minute
	autoscalingDeleteBudget = 5 * time.Minute
)

// ScalableTargetKind is the Application Auto Scaling target on the service's
// desired count.
type ScalableTargetKind struct{}

func (ScalableTargetKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := mustSpec[stack.ScalableTargetSpec](r)
	a := resource.Attrs{
		"min_capacity": {Value: i32(s.MinCapacity)},
		"max_capacity": {Value: i32(s.MaxCapacity)},
	}
	addTags(a, r.Tags)
	return a
}

type liveTarget struct {
	arn  string
	tags map[string]string
}

func describeTarget(ctx context.Context, x *resource.Ctx, resourceID string) (*aastypes.ScalableTarget, error) {
	out, err := x.AWS.AutoScaling.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{
		ServiceNamespace:  aastypes.ServiceNamespaceEcs,
		ResourceIds:       []string{resourceID},
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeScalableTargets %s: %w", resourceID, err)
	}
	for i := range out.ScalableTargets {
		if aws.ToString(out.ScalableTargets[i].ResourceId) == resourceID {
			return &out.ScalableTargets[i], nil
		}
	}
	return nil, nil
}

func (ScalableTargetKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.ScalableTargetSpec](r)
	if err != nil {
		return nil, err
	}
	t, err := describeTarget(ctx, x, s.ResourceID)
	if err != nil || t == nil {
		return nil, err
	}
	arn := aws.ToString(t.ScalableTargetARN)
	tags := map[string]string{}
	if arn != "" {
		out, err := x.AWS.AutoScaling.ListTagsForResource(ctx, &aas.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
		if err != nil && !awserr.IsNotFound(err) {
			return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
		}
		if out != nil {
			tags = out.Tags
		}
	}
	a := resource.Attrs{
		"min_capacity": {Value: i32(aws.ToInt32(t.MinCapacity))},
		"max_capacity": {Value: i32(aws.ToInt32(t.MaxCapacity))},
	}
	addTags(a, tags)
	return &resource.Live{ID: s.ResourceID, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"arn": arn, "resource_id": s.ResourceID},
		Raw:     liveTarget{arn: arn, tags: tags}}, nil
}

func (ScalableTargetKind) register(ctx context.Context, x *resource.Ctx, r *resource.Resource, tags map[string]string) (string, error) {
	s, err := specOf[stack.ScalableTargetSpec](r)
	if err != nil {
		return "", err
	}
	var arn string
	// docs/research/aws-ecs.md §5 (appautoscaling/target.go) and §5.2: the
	// service or the service-linked role may not be visible yet.
	err = retry(ctx, x, r.Address, "RegisterScalableTarget", autoscalingRetryBudget,
		codeWithMessage("ValidationException", "Unable to assume IAM role", "ECS service doesn't exist"),
		func() error {
			out, err := x.AWS.AutoScaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
				ServiceNamespace:  aastypes.ServiceNamespaceEcs,
				ResourceId:        aws.String(s.ResourceID),
				ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
				MinCapacity:       aws.Int32(s.MinCapacity),
				MaxCapacity:       aws.Int32(s.MaxCapacity),
				Tags:              tags,
			})
			if err == nil {
				arn = aws.ToString(out.ScalableTargetARN)
			}
			return err
		})
	if err != nil {
		return "", fmt.Errorf("RegisterScalableTarget %s: %w", s.ResourceID, err)
	}
	return arn, nil
}

func (k ScalableTargetKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	arn, err := k.register(ctx, x, r, r.Tags)
	if err != nil {
		return nil, err
	}
	return resource.Outputs{"arn": arn, "resource_id": r.Name}, nil
}

func (k ScalableTargetKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	l := live.Raw.(liveTarget)
	if !onlyTags(changed) {
		// Registering an existing target updates its capacities.
		if _, err := k.register(ctx, x, r, nil); err != nil {
			return nil, err
		}
	}
	set, remove := tagChanges(r.Tags, l.tags)
	if len(set) > 0 && l.arn != "" {
		if _, err := x.AWS.AutoScaling.TagResource(ctx, &aas.TagResourceInput{ResourceARN: aws.String(l.arn), Tags: set}); err != nil {
			return nil, fmt.Errorf("TagResource %s: %w", l.arn, err)
		}
	}
	if len(remove) > 0 && l.arn != "" {
		if _, err := x.AWS.AutoScaling.UntagResource(ctx, &aas.UntagResourceInput{ResourceARN: aws.String(l.arn), TagKeys: remove}); err != nil {
			return nil, fmt.Errorf("UntagResource %s: %w", l.arn, err)
		}
	}
	return live.Outputs, nil
}

func (ScalableTargetKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	s, err := specOf[stack.ScalableTargetSpec](r)
	if err != nil {
		return err
	}
	_, err = x.AWS.AutoScaling.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{
		ServiceNamespace:  aastypes.ServiceNamespaceEcs,
		ResourceId:        aws.String(s.ResourceID),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeregisterScalableTarget %s: %w", s.ResourceID, err)
	}
	// docs/research/aws-ecs.md §5.3 step 1: wait until not found.
	return poll(ctx, x, "scalable target "+s.ResourceID+" to go", 5*time.Second, autoscalingDeleteBudget, func() (bool, error) {
		t, err := describeTarget(ctx, x, s.ResourceID)
		return t == nil, err
	})
}

// ScalingPolicyKind is the target-tracking policy on the service's average
// CPU. Scaling policies take no tags: it is ours when it exists under our
// deterministic name on our target.
type ScalingPolicyKind struct{}

func (ScalingPolicyKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := mustSpec[stack.ScalingPolicySpec](r)
	return resource.Attrs{
		"policy_type":        {Value: string(aastypes.PolicyTypeTargetTrackingScaling), ForceNew: true},
		"metric":             {Value: string(aastypes.MetricTypeECSServiceAverageCPUUtilization)},
		"target_value":       {Value: strconv.FormatFloat(s.TargetCPUPercent, 'f', -1, 64)},
		"scale_in_cooldown":  {Value: i32(s.ScaleInCooldown)},
		"scale_out_cooldown": {Value: i32(s.ScaleOutCooldown)},
	}
}

func (ScalingPolicyKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	s, err := specOf[stack.ScalingPolicySpec](r)
	if err != nil {
		return nil, err
	}
	out, err := x.AWS.AutoScaling.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{
		ServiceNamespace:  aastypes.ServiceNamespaceEcs,
		ResourceId:        aws.String(s.ResourceID),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		PolicyNames:       []string{s.Name},
	})
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeScalingPolicies %s: %w", s.Name, err)
	}
	for _, p := range out.ScalingPolicies {
		if aws.ToString(p.PolicyName) != s.Name {
			continue
		}
		a := resource.Attrs{"policy_type": {Value: string(p.PolicyType), ForceNew: true}}
		if c := p.TargetTrackingScalingPolicyConfiguration; c != nil {
			metric := ""
			if c.PredefinedMetricSpecification != nil {
				metric = string(c.PredefinedMetricSpecification.PredefinedMetricType)
			}
			a["metric"] = resource.Attr{Value: metric}
			a["target_value"] = resource.Attr{Value: strconv.FormatFloat(aws.ToFloat64(c.TargetValue), 'f', -1, 64)}
			a["scale_in_cooldown"] = resource.Attr{Value: i32(aws.ToInt32(c.ScaleInCooldown))}
			a["scale_out_cooldown"] = resource.Attr{Value: i32(aws.ToInt32(c.ScaleOutCooldown))}
		}
		arn := aws.ToString(p.PolicyARN)
		return &resource.Live{ID: arn, Ours: true, Attrs: a, Outputs: resource.Outputs{"arn": arn, "name": s.Name}}, nil
	}
	return nil, nil
}

func (ScalingPolicyKind) put(ctx context.Context, x *resource.Ctx, r *resource.Resource) (resource.Outputs, error) {
	s, err := specOf[stack.ScalingPolicySpec](r)
	if err != nil {
		return nil, err
	}
	var arn string
	// docs/research/aws-ecs.md §5 (appautoscaling/policy.go).
	err = retry(ctx, x, r.Address, "PutScalingPolicy", autoscalingRetryBudget,
		anyOf(codeWithMessage("FailedResourceAccessException"), codeWithMessage("ObjectNotFoundException")),
		func() error {
			out, err := x.AWS.AutoScaling.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{
				PolicyName:        aws.String(s.Name),
				ServiceNamespace:  aastypes.ServiceNamespaceEcs,
				ResourceId:        aws.String(s.ResourceID),
				ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
				PolicyType:        aastypes.PolicyTypeTargetTrackingScaling,
				TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
					TargetValue: aws.Float64(s.TargetCPUPercent),
					PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
						PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization,
					},
					ScaleInCooldown:  aws.Int32(s.ScaleInCooldown),
					ScaleOutCooldown: aws.Int32(s.ScaleOutCooldown),
				},
			})
			if err == nil {
				arn = aws.ToString(out.PolicyARN)
			}
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("PutScalingPolicy %s: %w", s.Name, err)
	}
	return resource.Outputs{"arn": arn, "name": s.Name}, nil
}

func (k ScalingPolicyKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	return k.put(ctx, x, r)
}

func (k ScalingPolicyKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live, _ resource.Refs, _ []plan.FieldChange) (resource.Outputs, error) {
	return k.put(ctx, x, r)
}

func (ScalingPolicyKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	s, err := specOf[stack.ScalingPolicySpec](r)
	if err != nil {
		return err
	}
	_, err = x.AWS.AutoScaling.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{
		PolicyName:        aws.String(s.Name),
		ServiceNamespace:  aastypes.ServiceNamespaceEcs,
		ResourceId:        aws.String(s.ResourceID),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
	})
	// ObjectNotFoundException ("No scalable target registered…") is done (§5).
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteScalingPolicy %s: %w", s.Name, err)
	}
	return nil
}
