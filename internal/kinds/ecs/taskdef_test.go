package ecs

import "testing"

func TestFargateUnits(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"256": "256", "0.25 vCPU": "256", "1 vCPU": "1024", "1 GB": "1024", "2GB": "2048", "512": "512"} {
		if got := fargateUnits(in); got != want {
			t.Errorf("fargateUnits(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFamilyOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker:7": "deploybot-staging-worker",
		"deploybot-staging-worker:7": "deploybot-staging-worker",
		"arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-staging-worker2:1": "deploybot-staging-worker2",
	} {
		if got := familyOf(in); got != want {
			t.Errorf("familyOf(%q) = %q, want %q", in, got, want)
		}
	}
}
