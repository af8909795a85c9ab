package awssim

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ECS task state change events on the account's default event bus
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html):
// one "ECS Task State Change" event from source aws.ecs each time a task's
// state changes (every change bumps the task's version), with the task as
// DescribeTasks shows it, in the event's JSON spelling (lowerCamelCase, ISO
// timestamps). As the documentation says, the event carries no health
// status. They reach SQS through the rules that match them
// (eventbridge.go); Prefect's ECS observer reads them there
// (docs/research/prefect-flow-runs.md §B.2).

// ecsEmitChanges sends an event for every task whose state changed since
// its last event, as of `at`. Callers hold w.Mu.
func (w *World) ecsEmitChanges(at time.Time) {
	st := w.ecs()
	for _, arn := range st.taskOrder {
		t := st.Tasks[arn]
		if t == nil || t.Version == t.emitted {
			continue
		}
		t.emitted = t.Version
		if len(w.eb().Rules) == 0 {
			continue
		}
		w.emitEvent(at, "aws.ecs", "ECS Task State Change", []string{t.ARN}, w.taskEventDetail(t, at))
	}
}

// afterCall runs after every handler, with w.Mu held: changes the handler
// made itself (RunTask, StopTask) send their events now.
func (w *World) afterCall() { w.ecsEmitChanges(w.Clock.Now()) }

// nextEventAt is the earliest instant after now at which the simulated
// account changes by itself (an ECS task or deployment transition), for
// long polls and simulated processes that wait for what may come. Callers
// hold w.Mu.
func (w *World) nextEventAt(now time.Time) (time.Time, bool) {
	return w.ecsNextEvent(now, now.Add(24*time.Hour))
}

// NextEventAt is nextEventAt for callers outside the world (the Prefect
// simulator's processes schedule their wake-ups with it).
func (w *World) NextEventAt() (time.Time, bool) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
	return w.nextEventAt(w.Clock.Now())
}

func isoTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// taskEventDetail is the event's detail: the task in the event's spelling.
func (w *World) taskEventDetail(t *ecsTask, at time.Time) map[string]any {
	v := w.taskView(t, true)
	d := map[string]any{
		"clusterArn": aws.ToString(v.ClusterArn), "taskArn": aws.ToString(v.TaskArn), "taskDefinitionArn": aws.ToString(v.TaskDefinitionArn),
		"lastStatus": aws.ToString(v.LastStatus), "desiredStatus": aws.ToString(v.DesiredStatus), "launchType": string(v.LaunchType),
		"platformVersion": aws.ToString(v.PlatformVersion), "cpu": aws.ToString(v.Cpu), "memory": aws.ToString(v.Memory),
		"group": aws.ToString(v.Group), "startedBy": aws.ToString(v.StartedBy), "availabilityZone": aws.ToString(v.AvailabilityZone),
		"version": v.Version, "createdAt": isoTime(v.CreatedAt), "updatedAt": at.UTC().Format("2006-01-02T15:04:05.000Z"),
		"connectivity": string(v.Connectivity),
	}
	for k, ts := range map[string]*time.Time{"pullStartedAt": v.PullStartedAt, "pullStoppedAt": v.PullStoppedAt, "startedAt": v.StartedAt,
		"connectivityAt": v.ConnectivityAt, "stoppingAt": v.StoppingAt, "executionStoppedAt": v.ExecutionStoppedAt, "stoppedAt": v.StoppedAt} {
		if ts != nil {
			d[k] = isoTime(ts)
		}
	}
	if v.StopCode != "" {
		d["stopCode"] = string(v.StopCode)
	}
	if v.StoppedReason != nil {
		d["stoppedReason"] = aws.ToString(v.StoppedReason)
	}
	var containers []any
	for _, c := range v.Containers {
		cm := map[string]any{"containerArn": aws.ToString(c.ContainerArn), "name": aws.ToString(c.Name), "image": aws.ToString(c.Image),
			"lastStatus": aws.ToString(c.LastStatus), "taskArn": aws.ToString(c.TaskArn), "cpu": aws.ToString(c.Cpu)}
		if c.ExitCode != nil {
			cm["exitCode"] = *c.ExitCode
		}
		if c.Reason != nil {
			cm["reason"] = aws.ToString(c.Reason)
		}
		if c.RuntimeId != nil {
			cm["runtimeId"] = aws.ToString(c.RuntimeId)
		}
		var nis []any
		for _, ni := range c.NetworkInterfaces {
			nis = append(nis, map[string]any{"attachmentId": aws.ToString(ni.AttachmentId), "privateIpv4Address": aws.ToString(ni.PrivateIpv4Address)})
		}
		cm["networkInterfaces"] = nis
		containers = append(containers, cm)
	}
	d["containers"] = containers
	var atts []any
	for _, a := range v.Attachments {
		var details []any
		for _, kv := range a.Details {
			details = append(details, map[string]any{"name": aws.ToString(kv.Name), "value": aws.ToString(kv.Value)})
		}
		atts = append(atts, map[string]any{"id": aws.ToString(a.Id), "type": aws.ToString(a.Type), "status": aws.ToString(a.Status), "details": details})
	}
	d["attachments"] = atts
	if v.Overrides != nil {
		var cos []any
		for _, co := range v.Overrides.ContainerOverrides {
			com := map[string]any{"name": aws.ToString(co.Name)}
			if len(co.Command) > 0 {
				com["command"] = co.Command
			}
			if len(co.Environment) > 0 {
				var env []any
				for _, kv := range co.Environment {
					env = append(env, map[string]any{"name": aws.ToString(kv.Name), "value": aws.ToString(kv.Value)})
				}
				com["environment"] = env
			}
			cos = append(cos, com)
		}
		o := map[string]any{"containerOverrides": cos}
		if r := aws.ToString(v.Overrides.TaskRoleArn); r != "" {
			o["taskRoleArn"] = r
		}
		d["overrides"] = o
	}
	return d
}
