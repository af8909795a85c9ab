// Package kinds is the registry of every resource kind a stack is made of,
// grouped by AWS service in the packages below it, so that the tree reads
// as the stack: ecs (cluster, task definition, service), iam (roles), logs
// (log group), secretsmanager (the Prefect API key), servicediscovery
// (Cloud Map namespace and service), autoscaling (target and policy), ec2
// (the network and the worker's and flow runs' security groups), and sqs
// and eventbridge (the ECS observer's queues and the rule that feeds them);
// and prefect, the kinds that are not AWS's: the work pool and its job
// template, and the health gate's smoke deployment.
package kinds

import (
	"github.com/deploybot/deploybot/internal/kinds/autoscaling"
	"github.com/deploybot/deploybot/internal/kinds/ec2"
	"github.com/deploybot/deploybot/internal/kinds/ecs"
	"github.com/deploybot/deploybot/internal/kinds/eventbridge"
	"github.com/deploybot/deploybot/internal/kinds/iam"
	"github.com/deploybot/deploybot/internal/kinds/logs"
	"github.com/deploybot/deploybot/internal/kinds/prefect"
	"github.com/deploybot/deploybot/internal/kinds/secretsmanager"
	"github.com/deploybot/deploybot/internal/kinds/servicediscovery"
	"github.com/deploybot/deploybot/internal/kinds/sqs"
	"github.com/deploybot/deploybot/internal/resource"
)

// named is a kind that knows its name (every resource.Def does).
type named interface {
	resource.Kind
	Name() resource.KindName
}

var all = []named{
	ecs.Cluster, ecs.TaskDefinition, ecs.Service,
	iam.Role,
	logs.Group,
	secretsmanager.Secret,
	servicediscovery.Namespace, servicediscovery.Service,
	autoscaling.Target, autoscaling.Policy,
	ec2.VPC, ec2.Subnet, ec2.InternetGateway, ec2.RouteTable, ec2.EIP, ec2.NATGateway, ec2.SecurityGroup,
	sqs.Queue, eventbridge.Rule,
	prefect.WorkPool, prefect.Deployment,
}

// All returns every kind by name, for the engine.
func All() map[resource.KindName]resource.Kind {
	out := make(map[resource.KindName]resource.Kind, len(all))
	for _, k := range all {
		out[k.Name()] = k
	}
	return out
}
