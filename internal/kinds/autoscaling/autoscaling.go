// Package autoscaling holds the Application Auto Scaling kinds of a stack:
// the scalable target on the ECS service's desired count and its
// target-tracking policy on CPU.
package autoscaling

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// Kind names.
const (
	KindTarget resource.KindName = "autoscaling_target"
	KindPolicy resource.KindName = "autoscaling_policy"
)

// Budgets: docs/research/aws-ecs.md §5 (appautoscaling target.go/policy.go
// retry within propagationTimeout, 2m; delete waits until the target is not
// found, 5m).
const (
	retryBudget  = 2 * time.Minute
	deleteBudget = 5 * time.Minute
)

type x = resource.Context[awsapi.AutoScalingAPI]

func connect(a resource.APIs) (awsapi.AutoScalingAPI, error) { return a.AWS.AutoScaling, nil }

// TargetSpec is the scalable target for the service.
type TargetSpec struct {
	ResourceID  string // "service/<cluster>/<service>"
	MinCapacity int32
	MaxCapacity int32
}

// TargetModel is what a plan compares of a scalable target.
type TargetModel struct {
	Min int32 `attr:"min_capacity"`
	Max int32 `attr:"max_capacity"`
}

// Target is the scalable target kind.
var Target = resource.Define[TargetSpec, TargetModel, struct{}, awsapi.AutoScalingAPI](KindTarget, targetKind{}, connect)

type targetKind struct{}

type (
	target      = resource.Typed[TargetSpec]
	foundTarget = resource.Found[TargetModel, struct{}]
)

func (targetKind) Desired(r *target, _ resource.Refs) TargetModel {
	return TargetModel{Min: r.Spec.MinCapacity, Max: r.Spec.MaxCapacity}
}

func describeTarget(ctx context.Context, x *x, resourceID string) (*aastypes.ScalableTarget, error) {
	out, err := x.API.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{
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

func (targetKind) Read(ctx context.Context, x *x, r *target) (*foundTarget, error) {
	id := r.Spec.ResourceID
	t, err := describeTarget(ctx, x, id)
	if err != nil || t == nil {
		return nil, err
	}
	arn := aws.ToString(t.ScalableTargetARN)
	tags := map[string]string{}
	if arn != "" {
		out, err := x.API.ListTagsForResource(ctx, &aas.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
		if err != nil && !awserr.IsNotFound(err) {
			return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
		}
		if out != nil {
			tags = out.Tags
		}
	}
	return &foundTarget{ID: id, ARN: arn, Tags: tags,
		Model:   TargetModel{Min: aws.ToInt32(t.MinCapacity), Max: aws.ToInt32(t.MaxCapacity)},
		Outputs: resource.Outputs{"arn": arn, "resource_id": id}}, nil
}

// register registers the target; registering an existing one updates its
// capacities. docs/research/aws-ecs.md §5 (appautoscaling/target.go) and
// §5.2: the service or the service-linked role may not be visible yet.
func register(ctx context.Context, x *x, r *target, tags map[string]string) (string, error) {
	s := r.Spec
	arn, err := retry.When(ctx, x.Waits(r.Address, retryBudget, resource.RetryEvery), "RegisterScalableTarget",
		awserr.CodeWithMessage("ValidationException", "Unable to assume IAM role", "ECS service doesn't exist"),
		func() (string, error) {
			out, err := x.API.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
				ServiceNamespace:  aastypes.ServiceNamespaceEcs,
				ResourceId:        aws.String(s.ResourceID),
				ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
				MinCapacity:       aws.Int32(s.MinCapacity),
				MaxCapacity:       aws.Int32(s.MaxCapacity),
				Tags:              tags,
			})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.ScalableTargetARN), nil
		})
	if err != nil {
		return "", fmt.Errorf("RegisterScalableTarget %s: %w", s.ResourceID, err)
	}
	return arn, nil
}

func (targetKind) Create(ctx context.Context, x *x, r *target, _ resource.Refs) (resource.Outputs, error) {
	arn, err := register(ctx, x, r, r.Tags)
	if err != nil {
		return nil, err
	}
	return resource.Outputs{"arn": arn, "resource_id": r.Name}, nil
}

func (targetKind) Update(ctx context.Context, x *x, r *target, d *resource.Delta[TargetModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if !d.OnlyTags() {
		if _, err := register(ctx, x, r, nil); err != nil {
			return nil, err
		}
	}
	if d.Found.ARN != "" {
		if err := awstags.AutoScaling(x.API).Apply(ctx, d.Found.ARN, d.Tags); err != nil {
			return nil, err
		}
	}
	return d.Found.Outputs, nil
}

func (targetKind) Delete(ctx context.Context, x *x, r *target, _ *foundTarget) error {
	id := r.Spec.ResourceID
	_, err := x.API.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{
		ServiceNamespace:  aastypes.ServiceNamespaceEcs,
		ResourceId:        aws.String(id),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeregisterScalableTarget %s: %w", id, err)
	}
	// docs/research/aws-ecs.md §5.3 step 1: wait until not found.
	_, err = retry.Until(ctx, x.Waits(r.Address, deleteBudget, 5*time.Second), "scalable target "+id+" to go", func() (struct{}, bool, error) {
		t, err := describeTarget(ctx, x, id)
		return struct{}{}, t == nil, err
	})
	return err
}

// PolicySpec is the target-tracking policy on CPU.
type PolicySpec struct {
	Name             string
	ResourceID       string
	TargetCPUPercent float64
	ScaleInCooldown  int32
	ScaleOutCooldown int32
}

// PolicyModel is what a plan compares of a scaling policy; a live policy
// that is not target tracking has only its type.
type PolicyModel struct {
	Type             string   `attr:"policy_type,forcenew"`
	Metric           *string  `attr:"metric"`
	TargetValue      *float64 `attr:"target_value"`
	ScaleInCooldown  *int32   `attr:"scale_in_cooldown"`
	ScaleOutCooldown *int32   `attr:"scale_out_cooldown"`
}

// Policy is the scaling policy kind. Scaling policies take no tags: it is
// ours when it exists under our deterministic name on our target.
var Policy = resource.Define[PolicySpec, PolicyModel, struct{}, awsapi.AutoScalingAPI](KindPolicy, policyKind{}, connect, resource.Untagged())

type policyKind struct{}

type (
	policy      = resource.Typed[PolicySpec]
	foundPolicy = resource.Found[PolicyModel, struct{}]
)

func (policyKind) Desired(r *policy, _ resource.Refs) PolicyModel {
	s := r.Spec
	return PolicyModel{Type: string(aastypes.PolicyTypeTargetTrackingScaling),
		Metric: aws.String(string(aastypes.MetricTypeECSServiceAverageCPUUtilization)), TargetValue: aws.Float64(s.TargetCPUPercent),
		ScaleInCooldown: aws.Int32(s.ScaleInCooldown), ScaleOutCooldown: aws.Int32(s.ScaleOutCooldown)}
}

func (policyKind) Read(ctx context.Context, x *x, r *policy) (*foundPolicy, error) {
	s := r.Spec
	out, err := x.API.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{
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
		arn := aws.ToString(p.PolicyARN)
		f := &foundPolicy{ID: arn, ARN: arn, Model: PolicyModel{Type: string(p.PolicyType)}, Outputs: resource.Outputs{"arn": arn, "name": s.Name}}
		if c := p.TargetTrackingScalingPolicyConfiguration; c != nil {
			metric := ""
			if c.PredefinedMetricSpecification != nil {
				metric = string(c.PredefinedMetricSpecification.PredefinedMetricType)
			}
			f.Model.Metric, f.Model.TargetValue = aws.String(metric), aws.Float64(aws.ToFloat64(c.TargetValue))
			f.Model.ScaleInCooldown, f.Model.ScaleOutCooldown = aws.Int32(aws.ToInt32(c.ScaleInCooldown)), aws.Int32(aws.ToInt32(c.ScaleOutCooldown))
		}
		return f, nil
	}
	return nil, nil
}

// put creates or updates the policy (docs/research/aws-ecs.md §5
// appautoscaling/policy.go: retried while the target is not visible yet).
func (policyKind) put(ctx context.Context, x *x, r *policy) (resource.Outputs, error) {
	s := r.Spec
	arn, err := retry.When(ctx, x.Waits(r.Address, retryBudget, resource.RetryEvery), "PutScalingPolicy",
		awserr.IsCode("FailedResourceAccessException", "ObjectNotFoundException"),
		func() (string, error) {
			out, err := x.API.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{
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
			if err != nil {
				return "", err
			}
			return aws.ToString(out.PolicyARN), nil
		})
	if err != nil {
		return nil, fmt.Errorf("PutScalingPolicy %s: %w", s.Name, err)
	}
	return resource.Outputs{"arn": arn, "name": s.Name}, nil
}

func (k policyKind) Create(ctx context.Context, x *x, r *policy, _ resource.Refs) (resource.Outputs, error) {
	return k.put(ctx, x, r)
}

func (k policyKind) Update(ctx context.Context, x *x, r *policy, _ *resource.Delta[PolicyModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	return k.put(ctx, x, r)
}

func (policyKind) Delete(ctx context.Context, x *x, r *policy, _ *foundPolicy) error {
	s := r.Spec
	_, err := x.API.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{
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
