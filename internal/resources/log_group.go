package resources

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// LogGroupKind is the worker's CloudWatch log group.
type LogGroupKind struct{}

func (LogGroupKind) Desired(r *resource.Resource, _ resource.Refs) resource.Attrs {
	s := mustSpec[stack.LogGroupSpec](r)
	// 0 means "never expire" in CloudWatch, shown as such.
	a := resource.Attrs{"retention_days": {Value: itoa(s.RetentionDays)}}
	addTags(a, r.Tags)
	return a
}

type liveLogGroup struct {
	arn  string // without the ":*" suffix: the form tagging APIs take
	tags map[string]string
}

func (LogGroupKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	out, err := x.AWS.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(r.Name)})
	if err != nil {
		return nil, fmt.Errorf("DescribeLogGroups %s: %w", r.Name, err)
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) != r.Name {
			continue
		}
		arn := aws.ToString(g.LogGroupArn)
		if arn == "" {
			arn = strings.TrimSuffix(aws.ToString(g.Arn), ":*")
		}
		tagsOut, err := x.AWS.Logs.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if awserr.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
		}
		a := resource.Attrs{"retention_days": {Value: itoa(int(aws.ToInt32(g.RetentionInDays)))}}
		addTags(a, tagsOut.Tags)
		return &resource.Live{ID: arn, Ours: isOurs(r, tagsOut.Tags), Attrs: a,
			Outputs: resource.Outputs{"arn": arn, "name": r.Name},
			Raw:     liveLogGroup{arn: arn, tags: tagsOut.Tags}}, nil
	}
	return nil, nil
}

func (k LogGroupKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.LogGroupSpec](r)
	if err != nil {
		return nil, err
	}
	_, err = x.AWS.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(s.Name), Tags: r.Tags})
	if err != nil && !awserr.IsAlreadyExists(err) {
		return nil, fmt.Errorf("CreateLogGroup %s: %w", s.Name, err)
	}
	live, err := k.Read(ctx, x, r)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, fmt.Errorf("log group %s: created but not found", s.Name)
	}
	if !live.Ours {
		return nil, fmt.Errorf("log group %s %w", s.Name, errConflict)
	}
	if err := putRetention(ctx, x, r, s); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

func putRetention(ctx context.Context, x *resource.Ctx, r *resource.Resource, s *stack.LogGroupSpec) error {
	var err error
	if s.RetentionDays == 0 {
		_, err = x.AWS.Logs.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String(s.Name)})
	} else {
		// docs/research/aws-ecs.md §5 (logs/group.go): a fresh role may not be
		// allowed PutRetentionPolicy yet; retry for 2 minutes.
		err = retry(ctx, x, r.Address, "PutRetentionPolicy", 2*time.Minute,
			codeWithMessage("AccessDeniedException", "no identity-based policy allows the logs:PutRetentionPolicy action"),
			func() error {
				_, err := x.AWS.Logs.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{
					LogGroupName: aws.String(s.Name), RetentionInDays: aws.Int32(int32(s.RetentionDays))})
				return err
			})
	}
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", s.Name, err)
	}
	return nil
}

func (LogGroupKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := specOf[stack.LogGroupSpec](r)
	if err != nil {
		return nil, err
	}
	if changedPaths(changed)["retention_days"] {
		if err := putRetention(ctx, x, r, s); err != nil {
			return nil, err
		}
	}
	lg := live.Raw.(liveLogGroup)
	set, remove := tagChanges(r.Tags, lg.tags)
	if len(set) > 0 {
		if _, err := x.AWS.Logs.TagResource(ctx, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(lg.arn), Tags: set}); err != nil {
			return nil, fmt.Errorf("TagResource %s: %w", lg.arn, err)
		}
	}
	if len(remove) > 0 {
		if _, err := x.AWS.Logs.UntagResource(ctx, &cloudwatchlogs.UntagResourceInput{ResourceArn: aws.String(lg.arn), TagKeys: remove}); err != nil {
			return nil, fmt.Errorf("UntagResource %s: %w", lg.arn, err)
		}
	}
	return live.Outputs, nil
}

func (LogGroupKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	// docs/research/aws-ecs.md §5 (logs/group.go): retry OperationAbortedException
	// ("try again") for a minute; not found is done.
	err := retry(ctx, x, r.Address, "DeleteLogGroup", time.Minute, codeWithMessage("OperationAbortedException"), func() error {
		_, err := x.AWS.Logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(r.Name)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteLogGroup %s: %w", r.Name, err)
	}
	return nil
}
