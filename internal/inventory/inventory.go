// Package inventory lists what an AWS account holds for one environment:
// every resource tagged for it, found through the Resource Groups Tagging
// API, and its IAM roles, which that API does not cover. The engine plans
// the deletion of what its stack no longer has (an orphan, issue 11 item
// 11) and a destroy ends by proving the list empty.
//
// The list is of candidates: the tagging index lags behind the services
// ("Returns all the tagged or previously tagged resources",
// https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html;
// deleted resources linger in it: https://github.com/aws/aws-sdk/issues/302),
// and a role is only listed by its path and name. Each candidate is checked
// with its own service (resource.Adopter) before it is trusted.
package inventory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	taggingtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
)

// Query says what belongs to one environment.
type Query struct {
	// TagKey=TagValue is on every resource of the environment.
	TagKey, TagValue string
	// RolePath and RolePrefix find the environment's IAM roles: the
	// Tagging API does not return IAM roles
	// (https://github.com/aws/aws-sdk/issues/581), and ListRoles returns
	// no tags (https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoles.html),
	// so every role under RolePath whose name starts with RolePrefix is a
	// candidate.
	RolePath, RolePrefix string
	// Keep are the ARNs of resources tagged for the environment that are
	// not part of its stack (its lock), by the resource part of the ARN
	// ("parameter/deploybot/NAME/lock").
	Keep []string
}

// TaggingAPI is the Tagging API call List makes.
type TaggingAPI interface {
	GetResources(ctx context.Context, params *tagging.GetResourcesInput, optFns ...func(*tagging.Options)) (*tagging.GetResourcesOutput, error)
}

// RolesAPI is the IAM call List makes.
type RolesAPI interface {
	ListRoles(ctx context.Context, params *iam.ListRolesInput, optFns ...func(*iam.Options)) (*iam.ListRolesOutput, error)
}

// perPage is the most GetResources returns at once.
const perPage = 100

// List returns the ARNs of every candidate resource of q's environment,
// sorted and without Keep: both listings run at once, so the inventory
// costs one round trip beside a plan's other reads.
func List(ctx context.Context, tags TaggingAPI, roles RolesAPI, q Query) ([]string, error) {
	if q.TagKey == "" || q.TagValue == "" {
		return nil, fmt.Errorf("inventory: no tag to list by")
	}
	var (
		wg               sync.WaitGroup
		tagged, listed   []string
		tagErr, rolesErr error
	)
	wg.Go(func() { tagged, tagErr = listTagged(ctx, tags, q) })
	if q.RolePath != "" && q.RolePrefix != "" {
		wg.Go(func() { listed, rolesErr = listRoles(ctx, roles, q) })
	}
	wg.Wait()
	if tagErr != nil {
		return nil, tagErr
	}
	if rolesErr != nil {
		return nil, rolesErr
	}
	keep := map[string]bool{}
	for _, k := range q.Keep {
		keep[k] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, arn := range append(tagged, listed...) {
		if seen[arn] || keep[Resource(arn)] {
			continue
		}
		seen[arn] = true
		out = append(out, arn)
	}
	sort.Strings(out)
	return out, nil
}

func listTagged(ctx context.Context, c TaggingAPI, q Query) ([]string, error) {
	var arns []string
	p := tagging.NewGetResourcesPaginator(c, &tagging.GetResourcesInput{
		TagFilters:       []taggingtypes.TagFilter{{Key: aws.String(q.TagKey), Values: []string{q.TagValue}}},
		ResourcesPerPage: aws.Int32(perPage),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list what is tagged %s=%s (tag GetResources): %w", q.TagKey, q.TagValue, err)
		}
		for _, m := range page.ResourceTagMappingList {
			arns = append(arns, aws.ToString(m.ResourceARN))
		}
	}
	return arns, nil
}

func listRoles(ctx context.Context, c RolesAPI, q Query) ([]string, error) {
	var arns []string
	p := iam.NewListRolesPaginator(c, &iam.ListRolesInput{PathPrefix: aws.String(q.RolePath), MaxItems: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the IAM roles under %s (iam ListRoles): %w", q.RolePath, err)
		}
		for _, r := range page.Roles {
			if aws.ToString(r.Path) == q.RolePath && strings.HasPrefix(aws.ToString(r.RoleName), q.RolePrefix) {
				arns = append(arns, aws.ToString(r.Arn))
			}
		}
	}
	return arns, nil
}

// Resource is the resource part of an ARN (after the fifth colon):
// "security-group/sg-1", "log-group:/deploybot/x/worker",
// "role/deploybot/deploybot-x-task".
func Resource(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[5]
}

// Type is an ARN's "service:resource-type", as the Tagging API's
// ResourceTypeFilters name it ("ec2:security-group", "ecs:task-definition",
// "iam:role").
func Type(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	res := parts[5]
	if i := strings.IndexAny(res, "/:"); i >= 0 {
		res = res[:i]
	}
	return parts[2] + ":" + res
}

// ID is the last part of an ARN's resource ("sg-1" of
// "security-group/sg-1"), the id EC2 and others name the resource by.
func ID(arn string) string {
	res := Resource(arn)
	if i := strings.LastIndexAny(res, "/"); i >= 0 {
		return res[i+1:]
	}
	return res
}
