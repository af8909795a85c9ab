package awssim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

type logGroup struct {
	Name      string
	Created   time.Time
	Retention int32 // 0 = never expire
	Tags      map[string]string
	Streams   map[string]*logStream
}

type logStream struct {
	Name    string
	Created time.Time
	Events  []LogEvent // in time order
}

// LogEvent is one line of a log stream.
type LogEvent struct {
	At      time.Time
	Message string
}

func (w *World) logGroups() map[string]*logGroup {
	return *State(w, "logs", func() *map[string]*logGroup { m := map[string]*logGroup{}; return &m })
}

// logGroupARN is the ARN without the ":*" suffix (what TagResource and
// ListTagsForResource take); DescribeLogGroups' "arn" field carries ":*".
func (w *World) logGroupARN(name string) string {
	return "arn:aws:logs:" + w.Region + ":" + w.Account + ":log-group:" + name
}

// validRetention are the values PutRetentionPolicy accepts.
var validRetention = map[int32]bool{1: true, 3: true, 5: true, 7: true, 14: true, 30: true, 60: true, 90: true, 120: true,
	150: true, 180: true, 365: true, 400: true, 545: true, 731: true, 1096: true, 1827: true, 2192: true, 2557: true,
	2922: true, 3288: true, 3653: true}

func logGroupNotFound() error {
	return &cwltypes.ResourceNotFoundException{Message: aws.String("The specified log group does not exist.")}
}

func (w *World) logGroupByARN(arn string) (*logGroup, error) {
	if strings.HasSuffix(arn, ":*") {
		// Tagging APIs take the ARN without the trailing ":*".
		return nil, &cwltypes.InvalidParameterException{Message: aws.String("The specified ARN is not valid: " + arn + ". Use the log group ARN without ':*'.")}
	}
	prefix := w.logGroupARN("")
	if !strings.HasPrefix(arn, prefix) {
		return nil, &cwltypes.ResourceNotFoundException{Message: aws.String("The specified resource does not exist.")}
	}
	g, ok := w.logGroups()[strings.TrimPrefix(arn, prefix)]
	if !ok {
		return nil, &cwltypes.ResourceNotFoundException{Message: aws.String("The specified resource does not exist.")}
	}
	return g, nil
}

func init() {
	RegisterInventory(func(w *World) []Item {
		return listed(w.logGroups(), func(n string, g *logGroup) (Item, bool) {
			return Item{Service: "logs", Type: "log-group", ID: w.logGroupARN(n), Tags: copyTags(g.Tags)}, true
		})
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.CreateLogGroupInput) (*cloudwatchlogs.CreateLogGroupOutput, error) {
		name := aws.ToString(in.LogGroupName)
		if name == "" || len(name) > 512 {
			return nil, &cwltypes.InvalidParameterException{Message: aws.String("1 validation error detected: Value at 'logGroupName' failed to satisfy constraint: Member must have length between 1 and 512")}
		}
		if _, ok := w.logGroups()[name]; ok {
			return nil, &cwltypes.ResourceAlreadyExistsException{Message: aws.String("The specified log group already exists")}
		}
		w.logGroups()[name] = &logGroup{Name: name, Created: w.Clock.Now(), Tags: copyTags(in.Tags), Streams: map[string]*logStream{}}
		return &cloudwatchlogs.CreateLogGroupOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.DescribeLogGroupsInput) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
		prefix := aws.ToString(in.LogGroupNamePrefix)
		pattern := aws.ToString(in.LogGroupNamePattern)
		if prefix != "" && pattern != "" {
			return nil, &cwltypes.InvalidParameterException{Message: aws.String("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")}
		}
		limit := int(aws.ToInt32(in.Limit))
		if limit == 0 {
			limit = 50
		}
		if limit < 1 || limit > 50 {
			return nil, &cwltypes.InvalidParameterException{Message: aws.String("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50")}
		}
		// Prefix semantics (not equality): "/deploybot/staging" also lists
		// "/deploybot/staging-2/worker"; callers must compare names.
		var names []string
		for n := range w.logGroups() {
			if strings.HasPrefix(n, prefix) && (pattern == "" || strings.Contains(strings.ToLower(n), strings.ToLower(pattern))) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		start := 0
		if t := aws.ToString(in.NextToken); t != "" {
			i, err := strconv.Atoi(strings.TrimPrefix(t, "lg-"))
			if err != nil || i > len(names) {
				return nil, &cwltypes.InvalidParameterException{Message: aws.String("The specified nextToken is invalid.")}
			}
			start = i
		}
		out := &cloudwatchlogs.DescribeLogGroupsOutput{LogGroups: []cwltypes.LogGroup{}}
		end := min(start+limit, len(names))
		for _, n := range names[start:end] {
			g := w.logGroups()[n]
			lg := cwltypes.LogGroup{LogGroupName: aws.String(n), Arn: aws.String(w.logGroupARN(n) + ":*"),
				LogGroupArn: aws.String(w.logGroupARN(n)), CreationTime: aws.Int64(g.Created.UnixMilli()),
				StoredBytes: aws.Int64(0), MetricFilterCount: aws.Int32(0), LogGroupClass: cwltypes.LogGroupClassStandard}
			if g.Retention > 0 {
				lg.RetentionInDays = aws.Int32(g.Retention)
			}
			out.LogGroups = append(out.LogGroups, lg)
		}
		if end < len(names) {
			out.NextToken = aws.String(fmt.Sprintf("lg-%d", end))
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.DeleteLogGroupInput) (*cloudwatchlogs.DeleteLogGroupOutput, error) {
		name := aws.ToString(in.LogGroupName)
		if _, ok := w.logGroups()[name]; !ok {
			return nil, logGroupNotFound()
		}
		delete(w.logGroups(), name)
		return &cloudwatchlogs.DeleteLogGroupOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.PutRetentionPolicyInput) (*cloudwatchlogs.PutRetentionPolicyOutput, error) {
		g, ok := w.logGroups()[aws.ToString(in.LogGroupName)]
		if !ok {
			return nil, logGroupNotFound()
		}
		days := aws.ToInt32(in.RetentionInDays)
		if !validRetention[days] {
			return nil, &cwltypes.InvalidParameterException{Message: aws.String(fmt.Sprintf("1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]", days))}
		}
		g.Retention = days
		return &cloudwatchlogs.PutRetentionPolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.DeleteRetentionPolicyInput) (*cloudwatchlogs.DeleteRetentionPolicyOutput, error) {
		g, ok := w.logGroups()[aws.ToString(in.LogGroupName)]
		if !ok {
			return nil, logGroupNotFound()
		}
		g.Retention = 0
		return &cloudwatchlogs.DeleteRetentionPolicyOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.ListTagsForResourceInput) (*cloudwatchlogs.ListTagsForResourceOutput, error) {
		g, err := w.logGroupByARN(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		return &cloudwatchlogs.ListTagsForResourceOutput{Tags: copyTags(g.Tags)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.TagResourceInput) (*cloudwatchlogs.TagResourceOutput, error) {
		g, err := w.logGroupByARN(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		for k, v := range in.Tags {
			g.Tags[k] = v
		}
		return &cloudwatchlogs.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.UntagResourceInput) (*cloudwatchlogs.UntagResourceOutput, error) {
		g, err := w.logGroupByARN(aws.ToString(in.ResourceArn))
		if err != nil {
			return nil, err
		}
		deleteKeys(g.Tags, in.TagKeys)
		return &cloudwatchlogs.UntagResourceOutput{}, nil
	})
}
