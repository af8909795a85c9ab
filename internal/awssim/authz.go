package awssim

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// Authorization as IAM does it for the operations deploybot calls: which
// resource ARN an action is authorized on (AWS Service Authorization
// Reference, "Resource types" column; actions without resource-level
// permissions are authorized on "*"), which condition keys the request
// carries, and which further actions AWS checks behind the call
// (dependent.go, and iam:PassRole).

func (w *World) arn(service, rest string) string {
	return "arn:aws:" + service + ":" + w.Region + ":" + w.Account + ":" + rest
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (w *World) ecsCluster(c *string) string {
	name := aws.ToString(c)
	if name == "" {
		name = "default"
	}
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return w.arn("ecs", "cluster/"+name)
}

func (w *World) ecsService(cluster *string, svc string) string {
	if strings.HasPrefix(svc, "arn:") {
		return svc
	}
	return w.arn("ecs", "service/"+lastSegment(w.ecsCluster(cluster))+"/"+svc)
}

func (w *World) roleARN(name string) string {
	w.Mu.Lock()
	path, _ := w.rolePath(name)
	w.Mu.Unlock()
	if path == "" {
		path = "/"
	}
	return "arn:aws:iam::" + w.Account + ":role" + path + name
}

func (w *World) secretARN(id string) string {
	if strings.HasPrefix(id, "arn:") {
		return id
	}
	// Secrets Manager authorizes on the full ARN, which ends in a random
	// six-character suffix (docs/research/aws-ecs.md §7).
	return w.arn("secretsmanager", "secret:"+id+"-Sim000")
}

func (w *World) logGroup(name string) string { return w.arn("logs", "log-group:"+name) }

func requestTags(specs []ec2types.TagSpecification) map[string]string {
	ctx := map[string]string{}
	for _, s := range specs {
		for _, t := range s.Tags {
			ctx["aws:RequestTag/"+aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return ctx
}

func (w *World) resourceTags(id string) map[string]string {
	ctx := map[string]string{}
	w.Mu.Lock()
	tags, _ := w.ec2ResourceTags(id)
	w.Mu.Unlock()
	for k, v := range tags {
		ctx["aws:ResourceTag/"+k] = v
	}
	return ctx
}

// authzResource answers resourceOf.
func authzResource(w *World, service, op string, params any) (string, map[string]string) {
	if r, c, ok := w.queueAndRuleAuthz(params); ok {
		return r, c
	}
	if r, c, ok := w.standaloneTaskAuthz(params); ok {
		return r, c
	}
	switch in := params.(type) {
	// ECS
	case *ecs.CreateClusterInput:
		return w.ecsCluster(in.ClusterName), nil
	case *ecs.DeleteClusterInput:
		return w.ecsCluster(in.Cluster), nil
	case *ecs.DescribeClustersInput:
		if len(in.Clusters) > 0 {
			return w.ecsCluster(&in.Clusters[0]), nil
		}
	case *ecs.CreateServiceInput:
		return w.ecsService(in.Cluster, aws.ToString(in.ServiceName)), nil
	case *ecs.UpdateServiceInput:
		return w.ecsService(in.Cluster, aws.ToString(in.Service)), nil
	case *ecs.DeleteServiceInput:
		return w.ecsService(in.Cluster, aws.ToString(in.Service)), nil
	case *ecs.DescribeServicesInput:
		if len(in.Services) > 0 {
			return w.ecsService(in.Cluster, in.Services[0]), nil
		}
	case *ecs.ListServiceDeploymentsInput:
		return w.ecsService(in.Cluster, aws.ToString(in.Service)), nil
	case *ecs.DescribeServiceDeploymentsInput:
		if len(in.ServiceDeploymentArns) > 0 {
			return in.ServiceDeploymentArns[0], nil
		}
	case *ecs.DescribeTasksInput:
		if len(in.Tasks) > 0 {
			t := in.Tasks[0]
			if !strings.HasPrefix(t, "arn:") {
				t = w.arn("ecs", "task/"+lastSegment(w.ecsCluster(in.Cluster))+"/"+t)
			}
			return t, nil
		}
	case *ecs.RegisterTaskDefinitionInput:
		// The revision being registered: the family's next.
		fam := aws.ToString(in.Family)
		w.Mu.Lock()
		rev := len(w.ecs().Families[fam]) + 1
		w.Mu.Unlock()
		return w.arn("ecs", fmt.Sprintf("task-definition/%s:%d", fam, rev)), nil
	case *ecs.DeleteTaskDefinitionsInput:
		if len(in.TaskDefinitions) > 0 {
			td := in.TaskDefinitions[0]
			if !strings.HasPrefix(td, "arn:") {
				td = w.arn("ecs", "task-definition/"+td)
			}
			return td, nil
		}
	case *ecs.TagResourceInput, *ecs.UntagResourceInput, *ecs.ListTagsForResourceInput,
		*cloudwatchlogs.TagResourceInput, *cloudwatchlogs.UntagResourceInput, *cloudwatchlogs.ListTagsForResourceInput:
		return inputString(in, "ResourceArn"), nil

	// CloudWatch Logs
	case *cloudwatchlogs.CreateLogGroupInput, *cloudwatchlogs.DeleteLogGroupInput,
		*cloudwatchlogs.PutRetentionPolicyInput, *cloudwatchlogs.DeleteRetentionPolicyInput:
		return w.logGroup(inputString(in, "LogGroupName")), nil

	// Secrets Manager
	case *secretsmanager.CreateSecretInput:
		return w.secretARN(aws.ToString(in.Name)), nil
	case *secretsmanager.DescribeSecretInput, *secretsmanager.PutSecretValueInput, *secretsmanager.DeleteSecretInput,
		*secretsmanager.RestoreSecretInput, *secretsmanager.TagResourceInput, *secretsmanager.UntagResourceInput:
		return w.secretARN(inputString(in, "SecretId")), nil

	// IAM (roles)
	case *iam.CreateRoleInput:
		path := aws.ToString(in.Path)
		if path == "" {
			path = "/"
		}
		return "arn:aws:iam::" + w.Account + ":role" + path + aws.ToString(in.RoleName), nil
	case *iam.AttachRolePolicyInput, *iam.DetachRolePolicyInput:
		return w.roleARN(inputString(in, "RoleName")), map[string]string{"iam:PolicyARN": inputString(in, "PolicyArn")}
	}
	if name, ok := roleNameOf(params); ok {
		return w.roleARN(name), nil
	}
	switch in := params.(type) {
	// SSM
	case *ssm.PutParameterInput, *ssm.GetParameterInput, *ssm.DeleteParameterInput:
		return w.arn("ssm", "parameter"+inputString(in, "Name")), nil
	}
	if service == "EC2" && IsWrite(op) {
		return "", w.ec2Context(op, params)
	}
	return "", nil
}

// roleNameOf finds the RoleName of the IAM role operations.
func roleNameOf(params any) (string, bool) {
	switch params.(type) {
	case *iam.GetRoleInput, *iam.DeleteRoleInput, *iam.UpdateAssumeRolePolicyInput, *iam.TagRoleInput, *iam.UntagRoleInput,
		*iam.ListRoleTagsInput, *iam.ListAttachedRolePoliciesInput, *iam.PutRolePolicyInput, *iam.GetRolePolicyInput,
		*iam.DeleteRolePolicyInput, *iam.ListRolePoliciesInput:
		return inputString(params, "RoleName"), true
	}
	return "", false
}

// ec2Context gives EC2 writes their tag condition keys: the request's tags
// for creates, the target resource's tags otherwise.
func (w *World) ec2Context(op string, params any) map[string]string {
	if specs := tagSpecsOf(params); specs != nil {
		return requestTags(specs)
	}
	if id := ec2TargetID(params); id != "" {
		return w.resourceTags(id)
	}
	return nil
}

func tagSpecsOf(params any) []ec2types.TagSpecification {
	switch params.(type) {
	case *ec2.CreateVpcInput, *ec2.CreateSubnetInput, *ec2.CreateInternetGatewayInput, *ec2.CreateRouteTableInput,
		*ec2.AllocateAddressInput, *ec2.CreateNatGatewayInput, *ec2.CreateSecurityGroupInput:
		return inputField[[]ec2types.TagSpecification](params, "TagSpecifications")
	}
	return nil
}

// ec2TargetID is the resource an EC2 write acts on.
func ec2TargetID(params any) string {
	switch in := params.(type) {
	case *ec2.DeleteVpcInput, *ec2.ModifyVpcAttributeInput:
		return inputString(in, "VpcId")
	case *ec2.DeleteSubnetInput, *ec2.ModifySubnetAttributeInput:
		return inputString(in, "SubnetId")
	case *ec2.AttachInternetGatewayInput, *ec2.DetachInternetGatewayInput, *ec2.DeleteInternetGatewayInput:
		return inputString(in, "InternetGatewayId")
	case *ec2.DeleteRouteTableInput, *ec2.CreateRouteInput, *ec2.ReplaceRouteInput, *ec2.DeleteRouteInput, *ec2.AssociateRouteTableInput:
		return inputString(in, "RouteTableId")
	case *ec2.ReleaseAddressInput:
		return aws.ToString(in.AllocationId)
	case *ec2.DeleteNatGatewayInput:
		return aws.ToString(in.NatGatewayId)
	case *ec2.DeleteSecurityGroupInput, *ec2.AuthorizeSecurityGroupEgressInput, *ec2.RevokeSecurityGroupEgressInput,
		*ec2.AuthorizeSecurityGroupIngressInput, *ec2.RevokeSecurityGroupIngressInput:
		return inputString(in, "GroupId")
	case *ec2.CreateTagsInput, *ec2.DeleteTagsInput:
		if ids := inputField[[]string](in, "Resources"); len(ids) > 0 {
			return ids[0]
		}
	}
	return ""
}

// inputField is the field name of an SDK input struct, for the operations
// that share a field of that name and type (the cases above list them).
func inputField[T any](in any, name string) T {
	f := reflect.ValueOf(in).Elem().FieldByName(name)
	if !f.IsValid() {
		panic(fmt.Sprintf("awssim: %T has no field %s", in, name))
	}
	return f.Interface().(T)
}

// inputString is the *string field name of an SDK input, "" when it is nil.
func inputString(in any, name string) string { return aws.ToString(inputField[*string](in, name)) }

// impliedChecks are the further authorizations AWS makes behind a call:
// its dependent actions, from the simulated account's own table of AWS's
// documentation (dependent.go), and iam:PassRole on the roles a task
// definition passes to ECS.
func impliedChecks(w *World, service, op string, params any) []iampolicy.Request {
	var out []iampolicy.Request
	var tags map[string]string
	tagged := false
	for _, d := range dependentOf[Action(service, op)] {
		if d.OnlyTagged {
			if !tagged {
				tags, tagged = requestTagsOf(params), true
			}
			if len(tags) == 0 {
				continue
			}
		}
		req := iampolicy.Request{Action: d.Action}
		switch d.Action {
		case "ec2:CreateTags":
			// Tagging on create is authorized for that create action
			// (ec2:CreateAction), with the request's tags.
			req.Context = requestTagContext(tags)
			req.Context["ec2:CreateAction"] = op
		case "ecs:TagResource":
			// On the resource being created, for that create action
			// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
			req.Resource, _ = authzResource(w, service, op, params)
			req.Context = requestTagContext(tags)
			req.Context["ecs:CreateAction"] = op
		}
		out = append(out, req)
	}
	switch in := params.(type) {
	case *ecs.RunTaskInput:
		out = append(out, w.runTaskPassRoles(in)...)
	case *ecs.RegisterTaskDefinitionInput:
		// Passing the execution and task roles to ECS (docs/research/aws-ecs.md §5.2).
		for _, r := range []*string{in.ExecutionRoleArn, in.TaskRoleArn} {
			if aws.ToString(r) != "" {
				out = append(out, iampolicy.Request{Action: "iam:PassRole", Resource: aws.ToString(r),
					Context: map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
			}
		}
	}
	return out
}
