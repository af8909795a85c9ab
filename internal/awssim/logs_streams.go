package awssim

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Log streams and their events, written by the awslogs driver of simulated
// ECS tasks and read back with DescribeLogStreams, GetLogEvents and
// FilterLogEvents (Prefect's observer forwards a crashed run's last lines
// with GetLogEvents, docs/research/prefect-flow-runs.md §B.2).

// LogEvents returns a log group's events, stream by stream (sorted by
// name), for tests and the demo.
func (w *World) LogEvents(group string) map[string][]LogEvent {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
	out := map[string][]LogEvent{}
	if g, ok := w.logGroups()[group]; ok {
		for n, s := range g.Streams {
			out[n] = append([]LogEvent(nil), s.Events...)
		}
	}
	return out
}

// ContainerOutput is implemented by a ContainerProcess that writes lines to
// its standard output (what the awslogs driver ships): Output returns every
// line up to until, in time order, each time it is asked.
type ContainerOutput interface {
	Output(until time.Time) []LogEvent
}

// awslogs is a container's awslogs configuration, when it has one.
type awslogs struct {
	group, stream string
	create        bool
}

func (t *ecsTask) awslogs() (awslogs, bool) {
	c := t.essential()
	lc := c.LogConfiguration
	if lc == nil || lc.LogDriver != ecstypes.LogDriverAwslogs {
		return awslogs{}, false
	}
	o := lc.Options
	stream := o["awslogs-stream-prefix"] + "/" + aws.ToString(c.Name) + "/" + t.ID
	return awslogs{group: o["awslogs-group"], stream: stream, create: o["awslogs-create-group"] == "true"}, true
}

// startLogging sets up a container's awslogs stream as ECS does when it
// starts the container (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html):
// the logs endpoint must be reachable, the group must exist unless
// awslogs-create-group is "true" (then the execution role needs
// logs:CreateLogGroup), and the execution role needs logs:CreateLogStream.
// It returns why the container cannot start, "" when it can. Callers hold
// w.Mu.
func (w *World) startLogging(t *ecsTask, at time.Time) string {
	cfg, ok := t.awslogs()
	if !ok {
		return ""
	}
	if reach, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Service: "logs"}); !reach {
		return "ResourceInitializationError: failed to validate logger args: : signal: killed"
	}
	role := aws.ToString(t.Def.ExecutionRoleArn)
	session := "arn:aws:sts::" + w.Account + ":assumed-role/" + role[strings.LastIndex(role, "/")+1:] + "/" + t.ID
	groupARN := w.logGroupARN(cfg.group)
	denied := func(action, resource string) string {
		return "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: AccessDeniedException: User: " +
			session + " is not authorized to perform: " + action + " on resource: " + resource + " because no identity-based policy allows the " + action + " action status code: 400 : exit status 1"
	}
	g, exists := w.logGroups()[cfg.group]
	if !exists {
		if !cfg.create {
			return "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1"
		}
		if !w.RoleAllows(role, "logs:CreateLogGroup", groupARN+":*") {
			return denied("logs:CreateLogGroup", groupARN+":*")
		}
		g = &logGroup{Name: cfg.group, Created: at, Tags: map[string]string{}, Streams: map[string]*logStream{}}
		w.logGroups()[cfg.group] = g
	}
	streamARN := groupARN + ":log-stream:" + cfg.stream
	if !w.RoleAllows(role, "logs:CreateLogStream", streamARN) {
		return denied("logs:CreateLogStream", streamARN)
	}
	if g.Streams == nil {
		g.Streams = map[string]*logStream{}
	}
	if _, ok := g.Streams[cfg.stream]; !ok {
		g.Streams[cfg.stream] = &logStream{Name: cfg.stream, Created: at}
	}
	return ""
}

// ecsShipLogs appends what each running container wrote up to at to its
// stream (logs:PutLogEvents by the execution role). Callers hold w.Mu.
func (w *World) ecsShipLogs(at time.Time) {
	for _, arn := range w.ecs().taskOrder {
		t := w.ecs().Tasks[arn]
		if t == nil || t.Started.IsZero() {
			continue
		}
		out, ok := t.proc.(ContainerOutput)
		if !ok {
			continue
		}
		cfg, ok := t.awslogs()
		if !ok {
			continue
		}
		g := w.logGroups()[cfg.group]
		if g == nil || g.Streams[cfg.stream] == nil {
			continue // the group was deleted under the running task
		}
		until := at
		if !t.ExecStopped.IsZero() && t.ExecStopped.Before(until) {
			until = t.ExecStopped
		}
		lines := out.Output(until)
		if len(lines) > t.shipped {
			g.Streams[cfg.stream].Events = append(g.Streams[cfg.stream].Events, lines[t.shipped:]...)
			t.shipped = len(lines)
		}
	}
}

func init() {
	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.DescribeLogStreamsInput) (*cloudwatchlogs.DescribeLogStreamsOutput, error) {
		g, ok := w.logGroups()[aws.ToString(in.LogGroupName)]
		if !ok {
			return nil, logGroupNotFound()
		}
		var names []string
		for n := range g.Streams {
			if strings.HasPrefix(n, aws.ToString(in.LogStreamNamePrefix)) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		out := &cloudwatchlogs.DescribeLogStreamsOutput{LogStreams: []cwltypes.LogStream{}}
		for _, n := range names {
			s := g.Streams[n]
			ls := cwltypes.LogStream{LogStreamName: aws.String(n), CreationTime: aws.Int64(s.Created.UnixMilli()),
				Arn: aws.String(w.logGroupARN(g.Name) + ":log-stream:" + n)}
			if len(s.Events) > 0 {
				ls.FirstEventTimestamp = aws.Int64(s.Events[0].At.UnixMilli())
				ls.LastEventTimestamp = aws.Int64(s.Events[len(s.Events)-1].At.UnixMilli())
			}
			out.LogStreams = append(out.LogStreams, ls)
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.GetLogEventsInput) (*cloudwatchlogs.GetLogEventsOutput, error) {
		g, ok := w.logGroups()[aws.ToString(in.LogGroupName)]
		if !ok {
			return nil, logGroupNotFound()
		}
		s, ok := g.Streams[aws.ToString(in.LogStreamName)]
		if !ok {
			return nil, &cwltypes.ResourceNotFoundException{Message: aws.String("The specified log stream does not exist.")}
		}
		events := s.Events
		limit := int(aws.ToInt32(in.Limit))
		if limit <= 0 || limit > 10000 {
			limit = 10000
		}
		if len(events) > limit {
			if aws.ToBool(in.StartFromHead) {
				events = events[:limit]
			} else {
				events = events[len(events)-limit:]
			}
		}
		out := &cloudwatchlogs.GetLogEventsOutput{Events: []cwltypes.OutputLogEvent{}}
		for _, e := range events {
			out.Events = append(out.Events, cwltypes.OutputLogEvent{Timestamp: aws.Int64(e.At.UnixMilli()), Message: aws.String(e.Message),
				IngestionTime: aws.Int64(e.At.UnixMilli())})
		}
		return out, nil
	})

	Handle(func(ctx context.Context, w *World, in *cloudwatchlogs.FilterLogEventsInput) (*cloudwatchlogs.FilterLogEventsOutput, error) {
		g, ok := w.logGroups()[aws.ToString(in.LogGroupName)]
		if !ok {
			return nil, logGroupNotFound()
		}
		out := &cloudwatchlogs.FilterLogEventsOutput{Events: []cwltypes.FilteredLogEvent{}}
		var names []string
		for n := range g.Streams {
			if strings.HasPrefix(n, aws.ToString(in.LogStreamNamePrefix)) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			for _, e := range g.Streams[n].Events {
				if p := aws.ToString(in.FilterPattern); p != "" && !strings.Contains(e.Message, strings.Trim(p, `"`)) {
					continue
				}
				out.Events = append(out.Events, cwltypes.FilteredLogEvent{LogStreamName: aws.String(n), Timestamp: aws.Int64(e.At.UnixMilli()),
					Message: aws.String(e.Message), IngestionTime: aws.Int64(e.At.UnixMilli())})
			}
		}
		return out, nil
	})
}
