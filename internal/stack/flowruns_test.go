package stack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/resource"
)

// TestPoolRunsFlowsWhereTheWorkerRuns (issue 9): for every network the
// file can ask for, the pool's defaults put flow runs in the worker's
// subnets, VPC and public-IP setting (private subnets without a public IP
// behind a NAT, public ones with it otherwise), in the flow-run security
// group, or in the file's own groups when it names them.
func TestPoolRunsFlowsWhereTheWorkerRuns(t *testing.T) {
	private := false
	flowGroup := []resource.Ref{{Address: AddrFlowRunSecurityGroup, Key: "id"}}
	for _, tc := range []struct {
		name     string
		edit     func(*config.Network)
		publicIP bool
		groups   []resource.Ref
	}{
		{name: "existing, public IP", publicIP: true, groups: flowGroup},
		{name: "existing, private", edit: func(n *config.Network) { n.AssignPublicIP = &private }, groups: flowGroup},
		{name: "existing, the file's groups", publicIP: true, edit: func(n *config.Network) { n.SecurityGroupIDs = []string{"sg-team"} },
			groups: []resource.Ref{{Literal: "sg-team"}}},
		{name: "managed, nat none", publicIP: true, edit: managed("none", 2), groups: flowGroup},
		{name: "managed, nat single", edit: managed("single", 2), groups: flowGroup},
		{name: "managed, nat per-az", edit: managed("per-az", 3), groups: flowGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := existingEnv()
			if tc.edit != nil {
				tc.edit(&env.Network)
			}
			st, err := Build(env, testKey)
			if err != nil {
				t.Fatal(err)
			}
			svc := st.Resource(AddrService).Spec.(*ecs.ServiceSpec)
			d := st.Resource(AddrWorkPool).Spec.(*prefect.WorkPoolSpec).Defaults
			if diff := cmp.Diff(svc.Subnets, d.Subnets); diff != "" || len(d.Subnets) == 0 {
				t.Errorf("the flow runs' subnets are not the worker's (-worker +pool):\n%s", diff)
			}
			if d.AssignPublicIP != svc.AssignPublicIP || d.AssignPublicIP != tc.publicIP {
				t.Errorf("public IP: pool %v, worker %v, want %v", d.AssignPublicIP, svc.AssignPublicIP, tc.publicIP)
			}
			if diff := cmp.Diff(tc.groups, d.SecurityGroups); diff != "" {
				t.Errorf("the flow runs' security groups (-want +got):\n%s", diff)
			}
			if d.VPC.Literal == "" && d.VPC.Address == "" {
				t.Error("the pool has no vpc_id: the worker would refuse its network_configuration")
			}
			if d.ClusterARN != st.Names.ClusterARN || d.ExecutionRole != st.Names.FlowExecutionRoleARN || d.TaskRole != st.Names.FlowTaskRoleARN || d.LogGroup != st.Names.FlowRunLogGroup {
				t.Errorf("defaults %+v", d)
			}
		})
	}
}

// managed turns an environment's network into a managed one.
func managed(nat string, azs int) func(*config.Network) {
	return func(n *config.Network) { *n = managedEnv(nat, azs, "10.20.0.0/16").Network }
}
