package stack

import (
	"fmt"
	"maps"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/resource"
)

// NetworkPlacement is what the network part of a stack gives the compute
// part: where the worker's tasks run.
type NetworkPlacement struct {
	// Resources are the network resources to create (managed mode: VPC,
	// subnets, gateways, routes, NAT, EIPs, security group; existing mode:
	// only the worker security group, unless security_group_ids is given).
	Resources      []resource.Resource
	VPC            resource.Ref
	Subnets        []resource.Ref // the subnets the service's tasks use
	SecurityGroups []resource.Ref
	AssignPublicIP bool
	// Addresses of resources the ECS service must wait for (e.g. NAT routes).
	ServiceDependsOn []string
	// Notes are plan notes about the placement (e.g. why the worker gets a
	// public IP with nat: none).
	Notes []string
}

// AddrSecurityGroup is the worker security group's address.
const AddrSecurityGroup = "security_group.worker"

// Network returns the network resources of env and where the worker runs.
// Existing mode: only the worker security group (unless security_group_ids
// is given). Managed mode is built by managedNetwork (network_managed.go).
func Network(env *config.Environment, tags map[string]string) (NetworkPlacement, error) {
	if env.Network.Mode != "existing" {
		return managedNetwork(env, shapeOf(env), tags)
	}
	var np NetworkPlacement
	np.VPC = resource.Ref{Literal: env.Network.VPCID}
	for _, s := range env.Network.SubnetIDs {
		np.Subnets = append(np.Subnets, resource.Ref{Literal: s})
	}
	np.AssignPublicIP = env.PublicIP()
	if len(env.Network.SecurityGroupIDs) > 0 {
		for _, g := range env.Network.SecurityGroupIDs {
			np.SecurityGroups = append(np.SecurityGroups, resource.Ref{Literal: g})
		}
		return np, nil
	}
	sg := workerSecurityGroup(env.Name, np.VPC, tags, nil)
	np.Resources = append(np.Resources, sg)
	np.SecurityGroups = []resource.Ref{{Address: sg.Address, Key: "id"}}
	return np, nil
}

func workerSecurityGroup(env string, vpc resource.Ref, tags map[string]string, deps []string) resource.Resource {
	name := fmt.Sprintf("deploybot-%s-worker", env)
	return ec2.SecurityGroup.New(AddrSecurityGroup, name, deps, &ec2.SecurityGroupSpec{
		Name:        name,
		Description: "deploybot Prefect worker " + env + " (egress only)",
		VPC:         vpc,
		Egress:      []string{"-1:0-0:0.0.0.0/0"},
	}, withName(tags, name))
}

// withName returns tags plus the EC2 Name tag.
func withName(tags map[string]string, name string) map[string]string {
	out := maps.Clone(tags)
	if out == nil {
		out = map[string]string{}
	}
	out["Name"] = name
	return out
}
