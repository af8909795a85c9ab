// Package logs holds the CloudWatch Logs kind of a stack: the worker's log
// group.
package logs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/inventory"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// KindGroup is the log group kind.
const KindGroup resource.KindName = "log_group"

// GroupSpec is a log group.
type GroupSpec struct {
	Name          string
	RetentionDays int // 0: never expire
}

// GroupModel is what a plan compares of a log group.
type GroupModel struct {
	// 0 means "never expire" in CloudWatch, shown as such.
	RetentionDays int `attr:"retention_days"`
}

// Group is the log group kind.
var Group = resource.Define[GroupSpec, GroupModel, struct{}, awsapi.LogsAPI](KindGroup, groupKind{}, func(a resource.APIs) (awsapi.LogsAPI, error) { return a.AWS.Logs, nil })

type groupKind struct{}

type (
	x     = resource.Context[awsapi.LogsAPI]
	group = resource.Typed[GroupSpec]
	found = resource.Found[GroupModel, struct{}]
)

func (groupKind) Desired(r *group, _ resource.Refs) GroupModel {
	return GroupModel{RetentionDays: r.Spec.RetentionDays}
}

func (groupKind) Read(ctx context.Context, x *x, r *group) (*found, error) {
	out, err := x.API.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(r.Name)})
	if err != nil {
		return nil, fmt.Errorf("DescribeLogGroups %s: %w", r.Name, err)
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) != r.Name {
			continue
		}
		// The form the tagging APIs take: without the ":*" suffix.
		arn := aws.ToString(g.LogGroupArn)
		if arn == "" {
			arn = strings.TrimSuffix(aws.ToString(g.Arn), ":*")
		}
		tags, err := x.API.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if awserr.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
		}
		return &found{ID: arn, ARN: arn, Tags: tags.Tags,
			Model:   GroupModel{RetentionDays: int(aws.ToInt32(g.RetentionInDays))},
			Outputs: resource.Outputs{"arn": arn, "name": r.Name}}, nil
	}
	return nil, nil
}

// ARNTypes and Adopt: a log group tagged for the environment that its
// stack no longer has is read by its name and deleted.
func (k groupKind) ARNTypes() []string { return []string{"logs:log-group"} }

func (k groupKind) Adopt(ctx context.Context, x *x, arn string) (*group, *found, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(inventory.Resource(arn), "log-group:"), ":*")
	g := &group{Name: name, Spec: &GroupSpec{Name: name}}
	f, err := k.Read(ctx, x, g)
	if err != nil || f == nil {
		return nil, nil, err
	}
	return g, f, nil
}

func (k groupKind) Create(ctx context.Context, x *x, r *group, _ resource.Refs) (resource.Outputs, error) {
	_, err := x.API.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(r.Spec.Name), Tags: r.Tags})
	if err != nil && !awserr.IsAlreadyExists(err) {
		return nil, fmt.Errorf("CreateLogGroup %s: %w", r.Spec.Name, err)
	}
	live, err := k.Read(ctx, x, r)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, fmt.Errorf("log group %s: created but not found", r.Spec.Name)
	}
	if !resource.IsOurs(r.Tags, live.Tags) {
		return nil, fmt.Errorf("log group %s %w", r.Spec.Name, resource.ErrNotOurs)
	}
	if err := putRetention(ctx, x, r); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// accessDeniedRetention is CloudWatch Logs' answer while a fresh role's
// permission to set retention has not propagated.
var accessDeniedRetention = awserr.CodeWithMessage("AccessDeniedException", "no identity-based policy allows the logs:PutRetentionPolicy action")

func putRetention(ctx context.Context, x *x, r *group) error {
	var err error
	if r.Spec.RetentionDays == 0 {
		_, err = x.API.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String(r.Spec.Name)})
	} else {
		// docs/research/aws-ecs.md §5 (logs/group.go): a fresh role may not be
		// allowed PutRetentionPolicy yet; retry for 2 minutes.
		err = retry.Do(ctx, x.Waits(r.Address, 2*time.Minute, resource.RetryEvery), "PutRetentionPolicy", accessDeniedRetention, func() error {
			_, err := x.API.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{
				LogGroupName: aws.String(r.Spec.Name), RetentionInDays: aws.Int32(int32(r.Spec.RetentionDays))})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", r.Spec.Name, err)
	}
	return nil
}

func (groupKind) Update(ctx context.Context, x *x, r *group, d *resource.Delta[GroupModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if d.Desired.RetentionDays != d.Live.RetentionDays {
		if err := putRetention(ctx, x, r); err != nil {
			return nil, err
		}
	}
	if err := awstags.Logs(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

func (groupKind) Delete(ctx context.Context, x *x, r *group, _ *found) error {
	// docs/research/aws-ecs.md §5 (logs/group.go): retry OperationAbortedException
	// ("try again") for a minute; not found is done.
	err := retry.Do(ctx, x.Waits(r.Address, time.Minute, resource.RetryEvery), "DeleteLogGroup", awserr.CodeWithMessage("OperationAbortedException"), func() error {
		_, err := x.API.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(r.Name)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteLogGroup %s: %w", r.Name, err)
	}
	return nil
}
