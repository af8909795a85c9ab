package awssim

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
)

// Application Auto Scaling for ECS services (docs/research/aws-ecs.md §5 table:
// RegisterScalableTarget answers ValidationException "ECS service doesn't
// exist" until the service is ACTIVE; PutScalingPolicy ObjectNotFoundException
// "No scalable target registered" without a target).

type scalableTarget struct {
	ResourceID string
	Dimension  aastypes.ScalableDimension
	Min, Max   int32
	Suspended  *aastypes.SuspendedState
	ARN        string
	Created    time.Time
	Tags       map[string]string
}

type scalingPolicy struct {
	Name, ARN, ResourceID string
	Dimension             aastypes.ScalableDimension
	Type                  aastypes.PolicyType
	TargetTracking        *aastypes.TargetTrackingScalingPolicyConfiguration
	Alarms                []aastypes.Alarm
	Created               time.Time
}

type aasState struct {
	Targets  map[string]*scalableTarget // by resource id + dimension
	Policies map[string]*scalingPolicy  // by resource id + dimension + name
}

func (w *World) aas() *aasState {
	return State(w, "application-autoscaling", func() *aasState {
		return &aasState{Targets: map[string]*scalableTarget{}, Policies: map[string]*scalingPolicy{}}
	})
}

func aasKey(res string, dim aastypes.ScalableDimension) string { return res + "|" + string(dim) }

func aasValidation(msg string) error { return &aastypes.ValidationException{Message: aws.String(msg)} }

func checkECSNamespace(ns aastypes.ServiceNamespace, dim aastypes.ScalableDimension) error {
	if ns != aastypes.ServiceNamespaceEcs {
		return aasValidation("Unsupported service namespace: " + string(ns) + " (the simulated account scales ECS services only)")
	}
	if dim != "" && dim != aastypes.ScalableDimensionECSServiceDesiredCount {
		return aasValidation("Unsupported scalable dimension " + string(dim) + " for service namespace ecs")
	}
	return nil
}

func noTarget(ns aastypes.ServiceNamespace, res string, dim aastypes.ScalableDimension) error {
	return &aastypes.ObjectNotFoundException{Message: aws.String(fmt.Sprintf("No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s", ns, res, dim))}
}

// ecsServiceLinkedRole is the role Application Auto Scaling uses for ECS
// when RoleARN is not given.
func (w *World) ecsServiceLinkedRole() string {
	return "arn:aws:iam::" + w.Account + ":role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
}

func (w *World) aasTargetARNs() map[string]*scalableTarget {
	m := map[string]*scalableTarget{}
	for _, t := range w.aas().Targets {
		m[t.ARN] = t
	}
	return m
}

func init() {
	RegisterInventory(func(w *World) []Item {
		st := w.aas()
		return append(listed(st.Targets, func(_ string, t *scalableTarget) (Item, bool) {
			return Item{Service: "application-autoscaling", Type: "scalable-target", ID: t.ARN, Tags: copyTags(t.Tags)}, true
		}), listed(st.Policies, func(_ string, p *scalingPolicy) (Item, bool) {
			return Item{Service: "application-autoscaling", Type: "scaling-policy", ID: p.ARN, Tags: map[string]string{}}, true
		})...)
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.RegisterScalableTargetInput) (*applicationautoscaling.RegisterScalableTargetOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		res := aws.ToString(in.ResourceId)
		svc := w.activeServiceByResourceID(res)
		if svc == nil {
			return nil, aasValidation("ECS service doesn't exist: " + res)
		}
		if err := w.needAASServiceLinkedRole(ctx); err != nil {
			return nil, err
		}
		st := w.aas()
		key := aasKey(res, in.ScalableDimension)
		t, exists := st.Targets[key]
		if !exists {
			if in.MinCapacity == nil || in.MaxCapacity == nil {
				return nil, aasValidation("MinCapacity and MaxCapacity are required to register a new scalable target")
			}
			t = &scalableTarget{ResourceID: res, Dimension: in.ScalableDimension, Created: w.Clock.Now(), Tags: copyTags(in.Tags),
				ARN: "arn:aws:application-autoscaling:" + w.Region + ":" + w.Account + ":scalable-target/" + token("st#"+key+fmt.Sprint(w.NextSeq("aas-target")), 36, alnumLower)}
		}
		// A second call updates the target in place (idempotent); tags
		// are only taken on creation (TagResource changes them later).
		min, max := t.Min, t.Max
		if in.MinCapacity != nil {
			min = aws.ToInt32(in.MinCapacity)
		}
		if in.MaxCapacity != nil {
			max = aws.ToInt32(in.MaxCapacity)
		}
		if min < 0 || max < min {
			return nil, aasValidation(fmt.Sprintf("Maximum capacity (%d) cannot be less than minimum capacity (%d)", max, min))
		}
		t.Min, t.Max = min, max
		if in.SuspendedState != nil {
			t.Suspended = clone(in.SuspendedState)
		}
		st.Targets[key] = t
		// Capacity outside the new range is brought into it at once.
		switch {
		case svc.Desired < min:
			w.setServiceDesired(svc, min)
		case svc.Desired > max:
			w.setServiceDesired(svc, max)
		}
		return &applicationautoscaling.RegisterScalableTargetOutput{ScalableTargetARN: aws.String(t.ARN)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.DescribeScalableTargetsInput) (*applicationautoscaling.DescribeScalableTargetsOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		var list []aastypes.ScalableTarget
		for _, k := range sortedKeys(w.aas().Targets) {
			t := w.aas().Targets[k]
			if len(in.ResourceIds) > 0 && !hasInclude(in.ResourceIds, t.ResourceID) {
				continue
			}
			if in.ScalableDimension != "" && in.ScalableDimension != t.Dimension {
				continue
			}
			suspended := t.Suspended
			if suspended == nil {
				suspended = &aastypes.SuspendedState{DynamicScalingInSuspended: aws.Bool(false), DynamicScalingOutSuspended: aws.Bool(false), ScheduledScalingSuspended: aws.Bool(false)}
			}
			list = append(list, aastypes.ScalableTarget{ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String(t.ResourceID),
				ScalableDimension: t.Dimension, MinCapacity: aws.Int32(t.Min), MaxCapacity: aws.Int32(t.Max), RoleARN: aws.String(w.ecsServiceLinkedRole()),
				CreationTime: aws.Time(t.Created), SuspendedState: clone(suspended), ScalableTargetARN: aws.String(t.ARN)})
		}
		page, next, err := paginate(list, in.NextToken, in.MaxResults, 50)
		return &applicationautoscaling.DescribeScalableTargetsOutput{ScalableTargets: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.DeregisterScalableTargetInput) (*applicationautoscaling.DeregisterScalableTargetOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		res := aws.ToString(in.ResourceId)
		key := aasKey(res, in.ScalableDimension)
		if _, ok := w.aas().Targets[key]; !ok {
			return nil, noTarget(in.ServiceNamespace, res, in.ScalableDimension)
		}
		delete(w.aas().Targets, key)
		// Deregistering a target deletes its scaling policies.
		for k, p := range w.aas().Policies {
			if p.ResourceID == res && p.Dimension == in.ScalableDimension {
				delete(w.aas().Policies, k)
			}
		}
		return &applicationautoscaling.DeregisterScalableTargetOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.PutScalingPolicyInput) (*applicationautoscaling.PutScalingPolicyOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		res := aws.ToString(in.ResourceId)
		if _, ok := w.aas().Targets[aasKey(res, in.ScalableDimension)]; !ok {
			return nil, noTarget(in.ServiceNamespace, res, in.ScalableDimension)
		}
		typ := in.PolicyType
		if typ == "" {
			typ = aastypes.PolicyTypeStepScaling
		}
		if typ != aastypes.PolicyTypeTargetTrackingScaling {
			return nil, aasValidation("The simulated account supports TargetTrackingScaling policies only")
		}
		tt := in.TargetTrackingScalingPolicyConfiguration
		if tt == nil || tt.TargetValue == nil {
			return nil, aasValidation("TargetTrackingScalingPolicyConfiguration with a TargetValue is required for TargetTrackingScaling")
		}
		if tt.PredefinedMetricSpecification == nil && tt.CustomizedMetricSpecification == nil {
			return nil, aasValidation("Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified")
		}
		if p := tt.PredefinedMetricSpecification; p != nil && p.PredefinedMetricType != aastypes.MetricTypeECSServiceAverageCPUUtilization &&
			p.PredefinedMetricType != aastypes.MetricTypeECSServiceAverageMemoryUtilization {
			return nil, aasValidation("Unsupported predefined metric type " + string(p.PredefinedMetricType) + " for service namespace ecs")
		}
		name := aws.ToString(in.PolicyName)
		key := aasKey(res, in.ScalableDimension) + "|" + name
		p, ok := w.aas().Policies[key]
		if !ok {
			id := uuidFrom(fmt.Sprintf("policy#%s#%d", key, w.NextSeq("aas-policy")))
			p = &scalingPolicy{Name: name, ResourceID: res, Dimension: in.ScalableDimension, Created: w.Clock.Now(),
				ARN: "arn:aws:autoscaling:" + w.Region + ":" + w.Account + ":scalingPolicy:" + id + ":resource/ecs/" + res + ":policyName/" + name}
			for _, hl := range []string{"AlarmHigh", "AlarmLow"} {
				alarm := "TargetTracking-" + res + "-" + hl + "-" + uuidFrom(id+hl)
				p.Alarms = append(p.Alarms, aastypes.Alarm{AlarmName: aws.String(alarm), AlarmARN: aws.String("arn:aws:cloudwatch:" + w.Region + ":" + w.Account + ":alarm:" + alarm)})
			}
			w.aas().Policies[key] = p
		}
		p.Type, p.TargetTracking = typ, clone(tt)
		return &applicationautoscaling.PutScalingPolicyOutput{PolicyARN: aws.String(p.ARN), Alarms: clone(p.Alarms)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.DescribeScalingPoliciesInput) (*applicationautoscaling.DescribeScalingPoliciesOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		var list []aastypes.ScalingPolicy
		for _, k := range sortedKeys(w.aas().Policies) {
			p := w.aas().Policies[k]
			if r := aws.ToString(in.ResourceId); r != "" && r != p.ResourceID {
				continue
			}
			if len(in.PolicyNames) > 0 && !hasInclude(in.PolicyNames, p.Name) {
				continue
			}
			if in.ScalableDimension != "" && in.ScalableDimension != p.Dimension {
				continue
			}
			list = append(list, aastypes.ScalingPolicy{PolicyName: aws.String(p.Name), PolicyARN: aws.String(p.ARN), PolicyType: p.Type,
				ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String(p.ResourceID), ScalableDimension: p.Dimension,
				TargetTrackingScalingPolicyConfiguration: clone(p.TargetTracking), Alarms: clone(p.Alarms), CreationTime: aws.Time(p.Created)})
		}
		page, next, err := paginate(list, in.NextToken, in.MaxResults, 50)
		return &applicationautoscaling.DescribeScalingPoliciesOutput{ScalingPolicies: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.DeleteScalingPolicyInput) (*applicationautoscaling.DeleteScalingPolicyOutput, error) {
		w.advance()
		if err := checkECSNamespace(in.ServiceNamespace, in.ScalableDimension); err != nil {
			return nil, err
		}
		res := aws.ToString(in.ResourceId)
		key := aasKey(res, in.ScalableDimension) + "|" + aws.ToString(in.PolicyName)
		if _, ok := w.aas().Policies[key]; !ok {
			return nil, &aastypes.ObjectNotFoundException{Message: aws.String(fmt.Sprintf("No scaling policy found for service namespace: %s, resource ID: %s, scalable dimension: %s, policy name: %s",
				in.ServiceNamespace, res, in.ScalableDimension, aws.ToString(in.PolicyName)))}
		}
		delete(w.aas().Policies, key)
		return &applicationautoscaling.DeleteScalingPolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.ListTagsForResourceInput) (*applicationautoscaling.ListTagsForResourceOutput, error) {
		w.advance()
		t, ok := w.aasTargetARNs()[aws.ToString(in.ResourceARN)]
		if !ok {
			return nil, &aastypes.ResourceNotFoundException{Message: aws.String("No scalable target found for ARN " + aws.ToString(in.ResourceARN)), ResourceName: in.ResourceARN}
		}
		return &applicationautoscaling.ListTagsForResourceOutput{Tags: copyTags(t.Tags)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.TagResourceInput) (*applicationautoscaling.TagResourceOutput, error) {
		w.advance()
		t, ok := w.aasTargetARNs()[aws.ToString(in.ResourceARN)]
		if !ok {
			return nil, &aastypes.ResourceNotFoundException{Message: aws.String("No scalable target found for ARN " + aws.ToString(in.ResourceARN)), ResourceName: in.ResourceARN}
		}
		for k, v := range in.Tags {
			t.Tags[k] = v
		}
		return &applicationautoscaling.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *applicationautoscaling.UntagResourceInput) (*applicationautoscaling.UntagResourceOutput, error) {
		w.advance()
		t, ok := w.aasTargetARNs()[aws.ToString(in.ResourceARN)]
		if !ok {
			return nil, &aastypes.ResourceNotFoundException{Message: aws.String("No scalable target found for ARN " + aws.ToString(in.ResourceARN)), ResourceName: in.ResourceARN}
		}
		deleteKeys(t.Tags, in.TagKeys)
		return &applicationautoscaling.UntagResourceOutput{}, nil
	})
}
