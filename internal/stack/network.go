package stack

import (
	"fmt"

	"github.com/deploybot/deploybot/internal/config"
	"github.com/deploybot/deploybot/internal/resource"
)

// SecurityGroupSpec is the worker security group: egress only (the worker
// only calls out, to Prefect and the image registry; nothing connects in).
type SecurityGroupSpec struct {
	Name        string
	Description string
	VPC         Ref
	// Egress rules "proto:from-to:cidr"; the worker needs all egress.
	Egress []string
}

// Network returns the network resources of env and where the worker runs.
// Existing mode: only the worker security group (unless security_group_ids
// is given). Managed mode is built by buildManagedNetwork (network_managed.go).
func Network(env *config.Environment, tags map[string]string) (NetworkPlacement, error) {
	if env.Network.Mode != "existing" {
		return buildManagedNetwork(env, tags)
	}
	var np NetworkPlacement
	np.VPC = Ref{Literal: env.Network.VPCID}
	for _, s := range env.Network.SubnetIDs {
		np.Subnets = append(np.Subnets, Ref{Literal: s})
	}
	np.AssignPublicIP = env.PublicIP()
	if len(env.Network.SecurityGroupIDs) > 0 {
		for _, g := range env.Network.SecurityGroupIDs {
			np.SecurityGroups = append(np.SecurityGroups, Ref{Literal: g})
		}
		return np, nil
	}
	sg := workerSecurityGroup(env, np.VPC, tags, nil)
	np.Resources = append(np.Resources, sg)
	np.SecurityGroups = []Ref{{Address: sg.Address, Key: "id"}}
	return np, nil
}

func workerSecurityGroup(env *config.Environment, vpc Ref, tags map[string]string, deps []string) resource.Resource {
	name := fmt.Sprintf("deploybot-%s-worker", env.Name)
	return resource.Resource{
		Address:   "security_group.worker",
		Kind:      "security_group",
		Name:      name,
		DependsOn: deps,
		Spec: &SecurityGroupSpec{
			Name:        name,
			Description: "deploybot Prefect worker " + env.Name + " (egress only)",
			VPC:         vpc,
			Egress:      []string{"-1:0-0:0.0.0.0/0"},
		},
		Tags: withName(tags, name),
	}
}

// withName returns tags plus the EC2 Name tag.
func withName(tags map[string]string, name string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out["Name"] = name
	return out
}
