package stack

import "github.com/deploybot/deploybot/internal/resource"

// Ref is a value that is either literal (from the environment file, e.g. an
// existing subnet id) or an output of another resource of the stack.
type Ref struct {
	Literal string
	Address string // resource address, when not literal
	Key     string // output key, e.g. "id"
}

// Resolve returns the literal, or the referenced output (plan.Unknown when
// that resource does not exist yet).
func (r Ref) Resolve(refs resource.Refs) string {
	if r.Address == "" {
		return r.Literal
	}
	return refs.Get(r.Address, r.Key)
}

// NetworkPlacement is what the network part of a stack gives the compute
// part: where the worker's tasks run.
type NetworkPlacement struct {
	// Resources are the network resources to create (managed mode: VPC,
	// subnets, gateways, routes, NAT, EIPs, security group; existing mode:
	// only the worker security group, unless security_group_ids is given).
	Resources      []resource.Resource
	VPC            Ref
	Subnets        []Ref // the subnets the service's tasks use
	SecurityGroups []Ref
	AssignPublicIP bool
	// Addresses of resources the ECS service must wait for (e.g. NAT routes).
	ServiceDependsOn []string
	// Notes are plan notes about the placement (e.g. why the worker gets a
	// public IP with nat: none).
	Notes []string
}
