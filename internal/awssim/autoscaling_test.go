package awssim

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/google/go-cmp/cmp"
)

func TestAutoScaling(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	c := applicationautoscaling.NewFromConfig(f.w.Config())
	res := aws.String("service/deploybot-staging/worker")
	ns, dim := aastypes.ServiceNamespaceEcs, aastypes.ScalableDimensionECSServiceDesiredCount
	register := func(min, max int32) error {
		_, err := c.RegisterScalableTarget(bg, &applicationautoscaling.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
			MinCapacity: aws.Int32(min), MaxCapacity: aws.Int32(max), Tags: map[string]string{"deploybot:environment": "staging"}})
		return err
	}
	policy := &applicationautoscaling.PutScalingPolicyInput{PolicyName: aws.String("cpu"), ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(70), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization}}}
	steps := []struct {
		name string
		call func() error
		code string
	}{
		{"register before the service exists", func() error { return register(1, 3) }, "ValidationException"},
		{"policy without a target", call(bg, c.PutScalingPolicy, policy), "ObjectNotFoundException"},
		{"create the service", func() error { f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 0); return nil }, ""},
		{"register", func() error { return register(1, 3) }, ""},
		{"register again (update)", func() error { return register(1, 4) }, ""},
		{"policy", call(bg, c.PutScalingPolicy, policy), ""},
		{"policy again (update)", call(bg, c.PutScalingPolicy, policy), ""},
		{"delete a missing policy", call(bg, c.DeleteScalingPolicy, &applicationautoscaling.DeleteScalingPolicyInput{PolicyName: aws.String("nope"), ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim}), "ObjectNotFoundException"},
	}
	for _, s := range steps {
		if got := errCode(t, s.call()); got != s.code {
			t.Fatalf("%s: code %q, want %q", s.name, got, s.code)
		}
	}
	// Registering min 1 brought the service's desired count from 0 into range.
	if got := f.service(t).DesiredCount; got != 1 {
		t.Fatalf("desired count = %d, want 1", got)
	}
	targets, err := c.DescribeScalableTargets(bg, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: ns, ResourceIds: []string{*res}})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets.ScalableTargets) != 1 || aws.ToInt32(targets.ScalableTargets[0].MaxCapacity) != 4 {
		t.Fatalf("targets = %+v", targets.ScalableTargets)
	}
	tags, err := c.ListTagsForResource(bg, &applicationautoscaling.ListTagsForResourceInput{ResourceARN: targets.ScalableTargets[0].ScalableTargetARN})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"deploybot:environment": "staging"}, tags.Tags); diff != "" {
		t.Fatal(diff)
	}
	pols, err := c.DescribeScalingPolicies(bg, &applicationautoscaling.DescribeScalingPoliciesInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil {
		t.Fatal(err)
	}
	if len(pols.ScalingPolicies) != 1 || len(pols.ScalingPolicies[0].Alarms) != 2 || aws.ToFloat64(pols.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.TargetValue) != 70 {
		t.Fatalf("policies = %+v", pols.ScalingPolicies)
	}
	if _, err := c.DeregisterScalableTarget(bg, &applicationautoscaling.DeregisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeregisterScalableTarget(bg, &applicationautoscaling.DeregisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim}); errCode(t, err) != "ObjectNotFoundException" {
		t.Fatalf("deregister twice: %v", err)
	}
	if pols, _ := c.DescribeScalingPolicies(bg, &applicationautoscaling.DescribeScalingPoliciesInput{ServiceNamespace: ns, ResourceId: res}); len(pols.ScalingPolicies) != 0 {
		t.Fatal("policies outlived their scalable target")
	}
}
