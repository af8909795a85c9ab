package cost

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/kinds"
	"github.com/deploybot/deploybot/internal/plan"
)

// The attributes below are the ones the resource kinds put in a plan
// (internal/resources): the estimate reads nothing else.
func serviceAttrs(count, publicIP string) map[string]string {
	m := map[string]string{"launch_type": "FARGATE", "network.assign_public_ip": publicIP,
		"task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/deploybot-demo-worker:3", "service_registry": "arn:aws:servicediscovery:x"}
	if count != "" {
		m["desired_count"] = count
	}
	return m
}

func taskDef(cpu, mem string) map[string]string {
	return map[string]string{"cpu": cpu, "memory": mem}
}

func table(t *testing.T) *Table {
	t.Helper()
	tb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestEstimateAgainstThePriceTable(t *testing.T) {
	tb := table(t)
	us := tb.Regions["us-east-1"]
	h := tb.HoursPerMonth
	fargate := func(vcpu, gb float64, n int) float64 {
		return float64(n) * (vcpu*us[FargateVCPUx86] + gb*us[FargateGBx86]) * h
	}
	tests := []struct {
		name    string
		changes []plan.Change
		want    []Line
	}{
		{
			name: "a new environment with one NAT gateway",
			changes: []plan.Change{
				{Address: "task_definition.worker", Kind: "task_definition", Name: "deploybot-demo-worker", Action: plan.Create, After: taskDef("512", "1024")},
				{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Create, After: serviceAttrs("1", "DISABLED")},
				{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Create, After: map[string]string{}},
				{Address: "eip.nat_a", Kind: "eip", Action: plan.Create, After: map[string]string{"domain": "vpc"}},
				{Address: "secret.prefect_api_key", Kind: "secret", Action: plan.Create, After: map[string]string{}},
				{Address: "service_discovery_namespace.main", Kind: "service_discovery_namespace", Action: plan.Create, After: map[string]string{"type": "DNS_PRIVATE"}},
				{Address: "vpc.main", Kind: "vpc", Action: plan.Create, After: map[string]string{}},
			},
			want: []Line{
				{What: "1 NAT gateway", Delta: us[NATHour] * h},
				{What: "Fargate 0.5 vCPU / 1 GB × 1 task (Linux/x86)", Delta: fargate(0.5, 1, 1)},
				{What: "1 public IPv4 address (Elastic IP)", Delta: us[IPv4Hour] * h},
				{What: "1 Route 53 private hosted zone (the Cloud Map namespace's)", Delta: us[ZoneMonth]},
				{What: "1 Secrets Manager secret", Delta: us[SecretMonth]},
				{What: "1 Cloud Map service instance (one per task)", Delta: us[CloudMapMonth]},
			},
		},
		{
			name: "a CPU change",
			changes: []plan.Change{
				{Address: "task_definition.worker", Kind: "task_definition", Name: "deploybot-demo-worker", Action: plan.Update,
					Before: taskDef("512", "1024"), After: taskDef("1024", "2048")},
				{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Update, Before: serviceAttrs("1", "ENABLED"),
					After: func() map[string]string {
						m := serviceAttrs("1", "ENABLED")
						m["task_definition"] = plan.Unknown
						return m
					}()},
			},
			want: []Line{{What: "Fargate 0.5 vCPU / 1 GB → 1 vCPU / 2 GB × 1 task (Linux/x86)", Delta: fargate(1, 2, 1) - fargate(0.5, 1, 1)}},
		},
		{
			name: "more tasks with public IPs",
			changes: []plan.Change{
				{Address: "task_definition.worker", Kind: "task_definition", Name: "deploybot-demo-worker", Action: plan.NoOp, Before: taskDef("256", "512"), After: taskDef("256", "512")},
				{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Update, Before: serviceAttrs("1", "ENABLED"), After: serviceAttrs("3", "ENABLED")},
			},
			want: []Line{
				{What: "Fargate 0.25 vCPU / 0.5 GB × 1 task → 3 tasks (Linux/x86)", Delta: fargate(0.25, 0.5, 2)},
				{What: "2 public IPv4 addresses (the worker tasks' own)", Delta: 2 * us[IPv4Hour] * h},
				{What: "2 Cloud Map service instances (one per task)", Delta: 2 * us[CloudMapMonth]},
			},
		},
		{
			name: "a NAT gateway moves the tasks' public IP to its Elastic IP",
			changes: []plan.Change{
				{Address: "task_definition.worker", Kind: "task_definition", Name: "deploybot-demo-worker", Action: plan.NoOp, Before: taskDef("512", "1024"), After: taskDef("512", "1024")},
				{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Update, Before: serviceAttrs("1", "ENABLED"), After: serviceAttrs("1", "DISABLED")},
				{Address: "eip.nat_a", Kind: "eip", Action: plan.Create, After: map[string]string{}},
				{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Create, After: map[string]string{}},
			},
			want: []Line{
				{What: "1 NAT gateway", Delta: us[NATHour] * h},
				{What: "1 public IPv4 address (Elastic IP)", Delta: us[IPv4Hour] * h},
				{What: "1 public IPv4 address (the worker tasks' own)", Delta: -us[IPv4Hour] * h},
			},
		},
		{
			name: "a destroy",
			changes: []plan.Change{
				{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Delete, Before: map[string]string{}},
				{Address: "secret.prefect_api_key", Kind: "secret", Action: plan.Delete, Before: map[string]string{}},
			},
			want: []Line{{What: "1 NAT gateway", Delta: -us[NATHour] * h}, {What: "1 Secrets Manager secret", Delta: -us[SecretMonth]}},
		},
		{
			name: "a conflict bills nothing of ours",
			changes: []plan.Change{
				{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Conflict, Before: map[string]string{}, After: map[string]string{}},
			},
			want: []Line{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tb.Estimate(&plan.Plan{Region: "us-east-1", Changes: tc.changes})
			if diff := cmp.Diff(tc.want, e.Lines, cmp.Comparer(near)); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			sum := 0.0
			for _, l := range tc.want {
				sum += l.Delta
			}
			if !near(e.Delta, sum) {
				t.Errorf("Delta = %v, want %v", e.Delta, sum)
			}
			if len(e.Unknown) > 0 {
				t.Errorf("unknown: %v", e.Unknown)
			}
		})
	}
}

func TestTheIssueExample(t *testing.T) {
	// issue 13: "≈ +$32.85/month: 1 NAT gateway; +$3.65: 1 public IPv4 address".
	e := table(t).Estimate(&plan.Plan{Region: "us-east-1", Changes: []plan.Change{
		{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Create, After: map[string]string{}},
		{Address: "eip.nat_a", Kind: "eip", Action: plan.Create, After: map[string]string{}},
	}})
	got := e.Text()
	for _, want := range []string{"≈ +$36.50/month", "+$32.85 1 NAT gateway", "+$3.65 1 public IPv4 address", "NAT gateway data processing per GB"} {
		if !strings.Contains(got, want) {
			t.Errorf("Text() = %q, want it to contain %q", got, want)
		}
	}
}

func TestUnknownIsNeverGuessed(t *testing.T) {
	tb := table(t)
	ch := []plan.Change{
		{Address: "nat_gateway.a", Kind: "nat_gateway", Action: plan.Create, After: map[string]string{}},
		{Address: "rds_instance.metadata", Kind: "rds_instance", Action: plan.Create, After: map[string]string{}},
	}
	e := tb.Estimate(&plan.Plan{Region: "ap-south-2", Changes: ch})
	if len(e.Lines) != 0 || e.Delta != 0 {
		t.Errorf("a region without prices got lines %v", e.Lines)
	}
	want := []string{"1 NAT gateway (the price table has no prices for ap-south-2)", "rds_instance.metadata (kind rds_instance is not in the price table)"}
	if diff := cmp.Diff(want, e.Unknown); diff != "" {
		t.Errorf("unknown (-want +got):\n%s", diff)
	}
	// us-west-2 has Fargate prices but no NAT gateway price.
	e = tb.Estimate(&plan.Plan{Region: "us-west-2", Changes: ch[:1]})
	if len(e.Lines) != 0 || len(e.Unknown) != 1 || !strings.Contains(e.Unknown[0], "no nat_gateway_hour price for us-west-2") {
		t.Errorf("us-west-2 NAT: lines %v unknown %v", e.Lines, e.Unknown)
	}
}

func TestPriceTableHasSourcesAndDate(t *testing.T) {
	tb := table(t)
	if tb.Retrieved == "" || len(tb.Sources) == 0 {
		t.Fatal("the table has no date or sources")
	}
	for name, s := range tb.Sources {
		if !strings.HasPrefix(s.URL, "https://") {
			t.Errorf("source %s has no URL", name)
		}
	}
	for region, prices := range tb.Regions {
		if len(prices) == 0 {
			t.Errorf("region %s has no prices", region)
		}
	}
	if _, err := Parse([]byte(`{"retrieved":"x","hours_per_month":730,"regions":{"r":{"k":"cheap"}}}`)); err == nil {
		t.Error("a price that is not a number was accepted")
	}
}

func TestMoney(t *testing.T) {
	for v, want := range map[float64]string{32.85: "+$32.85", -3.65: "-$3.65", 0: "$0.00", 0.001: "$0.00", 0.4: "+$0.40"} {
		if got := Money(v); got != want {
			t.Errorf("Money(%v) = %q, want %q", v, got, want)
		}
	}
}

// A region's prices are its own: Frankfurt's Fargate hour is dearer.
func TestRegionsArePricedApart(t *testing.T) {
	tb := table(t)
	ch := []plan.Change{
		{Address: "task_definition.worker", Kind: "task_definition", Name: "deploybot-demo-worker", Action: plan.Create, After: taskDef("1024", "2048")},
		{Address: "ecs_service.worker", Kind: "ecs_service", Action: plan.Create, After: serviceAttrs("1", "DISABLED")},
	}
	for region, want := range map[string]float64{
		"us-east-1":    (0.04048 + 2*0.004445) * 730,
		"eu-central-1": (0.04656 + 2*0.00511) * 730,
	} {
		e := tb.Estimate(&plan.Plan{Region: region, Changes: ch})
		if len(e.Lines) == 0 || !near(e.Lines[0].Delta, want) {
			t.Errorf("%s: lines %+v, want Fargate at %.4f", region, e.Lines, want)
		}
	}
}

// Every resource kind deploybot has is in the price table: priced here,
// free, or usage-based. A new kind fails this test until someone says
// which (in prices.json, and in measure when it is billed by the hour or
// month), so the estimate never leaves a billed resource out silently.
func TestEveryKindIsInThePriceTable(t *testing.T) {
	tb := table(t)
	known := map[string]bool{}
	for k := range priced {
		known[k] = true
	}
	for _, k := range tb.Kinds.Free {
		known[k] = true
	}
	for k := range tb.Kinds.Usage {
		known[k] = true
	}
	for kind := range kinds.All() {
		if !known[string(kind)] {
			t.Errorf("kind %s is not in internal/cost/prices.json (kinds.free or kinds.usage) nor priced by measure", kind)
		}
	}
}
