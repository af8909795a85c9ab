package awssim

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/deploybot/deploybot/internal/iampolicy"
)

// Service-linked roles, as a fresh account has them: none. ECS and
// Application Auto Scaling create theirs on first use, on the caller's
// behalf, only when the caller may iam:CreateServiceLinkedRole for that
// service; otherwise the call that needed it fails, and retrying does not
// help:
//   - CreateCluster: "When you call the CreateCluster API operation, Amazon
//     ECS attempts to create the Amazon ECS service-linked role for your
//     account ... if the user that makes the call doesn't have permissions
//     to create the service-linked role, it isn't created"
//     (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html);
//     the call then fails with InvalidParameterException "Unable to assume
//     the service linked role. Please verify that the ECS service linked
//     role exists." (as reported in
//     https://github.com/aws-samples/baseline-environment-on-aws/issues/238).
//   - RegisterScalableTarget: "Application Auto Scaling requires permissions
//     to create a service-linked role the first time any user in your AWS
//     account calls RegisterScalableTarget for a given service"
//     (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html);
//     without it, ValidationException "Unable to assume IAM role: <the
//     role's ARN>" (as reported in
//     https://github.com/aws-samples/amazon-bedrock-samples/pull/285).
// CreateServiceLinkedRole creates them; a second call for the same service
// is InvalidInput "Service role name ... has been taken in this account"
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html).

// serviceLinkedRoleNames are the roles the simulated services use, by
// service principal.
var serviceLinkedRoleNames = map[string]string{
	"ecs.amazonaws.com":                         "AWSServiceRoleForECS",
	"ecs.application-autoscaling.amazonaws.com": "AWSServiceRoleForApplicationAutoScaling_ECSService",
}

func serviceLinkedRoleARN(account, service string) string {
	return "arn:aws:iam::" + account + ":role/aws-service-role/" + service + "/" + serviceLinkedRoleNames[service]
}

// createServiceLinkedRole adds service's role to the account. w.Mu held.
func (w *World) createServiceLinkedRole(service string) (*iamRole, error) {
	name, ok := serviceLinkedRoleNames[service]
	if !ok {
		return nil, &iamtypes.InvalidInputException{Message: aws.String("Service " + service + " is not supported by the simulated account for service-linked roles")}
	}
	s := w.iam()
	if _, exists := s.Roles[name]; exists {
		return nil, &iamtypes.InvalidInputException{Message: aws.String("Service role name " + name + " has been taken in this account, please try a different suffix.")}
	}
	now := w.Clock.Now()
	path := "/aws-service-role/" + service + "/"
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":%q},"Action":"sts:AssumeRole"}]}`, service)
	r := &iamRole{Name: name, Path: path, ARN: roleARN(w.Account, path, name),
		ID:          "AROA" + token("slr:"+name+fmt.Sprint(w.NextSeq("iam-role")), 17, alnumUpper),
		Description: "service-linked role of " + service, TrustPolicy: trust, MaxSession: 3600,
		Created: now, TrustChanged: now, orderedTags: newOrderedTags(), Inline: map[string]string{}}
	s.Roles[name] = r
	return r, nil
}

// needServiceLinkedRole makes sure service's role exists before a call
// that uses it, creating it as the service does when the caller may;
// refused is the service's own error otherwise. w.Mu held.
func (w *World) needServiceLinkedRole(ctx context.Context, service string, refused error) error {
	if _, ok := w.iam().Roles[serviceLinkedRoleNames[service]]; ok {
		return nil
	}
	p := PrincipalOf(ctx)
	if p.Policy != nil && !p.Policy.Allows(iampolicy.Request{Action: "iam:CreateServiceLinkedRole",
		Resource: serviceLinkedRoleARN(w.Account, service), Context: map[string]string{"iam:AWSServiceName": service}}) {
		return refused
	}
	_, err := w.createServiceLinkedRole(service)
	return err
}

// needECSServiceLinkedRole is CreateCluster's check.
func (w *World) needECSServiceLinkedRole(ctx context.Context) error {
	return w.needServiceLinkedRole(ctx, "ecs.amazonaws.com", &ecstypes.InvalidParameterException{
		Message: aws.String("Unable to assume the service linked role. Please verify that the ECS service linked role exists.")})
}

// needAASServiceLinkedRole is RegisterScalableTarget's check.
func (w *World) needAASServiceLinkedRole(ctx context.Context) error {
	svc := "ecs.application-autoscaling.amazonaws.com"
	return w.needServiceLinkedRole(ctx, svc, &aastypes.ValidationException{
		Message: aws.String("Unable to assume IAM role: " + serviceLinkedRoleARN(w.Account, svc))})
}

// RemoveServiceLinkedRoles deletes every service-linked role (a test
// starting from an account where no one has used ECS yet, after roles
// were created by an earlier step).
func (w *World) RemoveServiceLinkedRoles() {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	for _, name := range serviceLinkedRoleNames {
		delete(w.iam().Roles, name)
	}
}

func init() {
	Handle(func(ctx context.Context, w *World, in *iam.CreateServiceLinkedRoleInput) (*iam.CreateServiceLinkedRoleOutput, error) {
		service := strings.TrimSpace(aws.ToString(in.AWSServiceName))
		r, err := w.createServiceLinkedRole(service)
		if err != nil {
			return nil, err
		}
		return &iam.CreateServiceLinkedRoleOutput{Role: r.sdk()}, nil
	})
}
