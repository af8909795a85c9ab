package awssim

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The ECS service scheduler, simulated lazily: nothing runs in the
// background; every ECS handler (and World.Advance) first replays every
// transition due between the last call and w.Clock.Now(), in time order.

type timedAction struct {
	at time.Time
	do func(at time.Time)
}

// circuitBreakerThreshold is how many failed tasks fail a deployment. By
// default max(3, min(200, ceil(0.5*desired))) (docs/research/aws-ecs.md §4.1,
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html);
// a ThresholdConfiguration changes it: BOUNDED_PERCENT (the default type,
// value 50) keeps the bounds, UNBOUNDED_PERCENT drops them, COUNT is the
// value itself (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ThresholdConfiguration.html).
func circuitBreakerThreshold(desired int32, cb *ecstypes.DeploymentCircuitBreaker) int32 {
	typ, value := ecstypes.ThresholdTypeBoundedPercent, int32(50)
	if cb != nil && cb.ThresholdConfiguration != nil {
		typ, value = cb.ThresholdConfiguration.Type, cb.ThresholdConfiguration.Value
	}
	pct := int(math.Ceil(float64(value) / 100 * float64(desired)))
	switch typ {
	case ecstypes.ThresholdTypeCount:
		return max(1, value)
	case ecstypes.ThresholdTypeUnboundedPercent:
		return int32(max(1, pct))
	}
	return int32(max(3, min(200, pct)))
}

// resetsOnHealthyTask: a task of the deployment that becomes healthy resets
// the failure count, unless resetOnHealthyTask is false
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentCircuitBreaker.html:
// "The default is true"). "Healthy" is read as its container health check
// passing: a task without one never resets the count.
func resetsOnHealthyTask(cb *ecstypes.DeploymentCircuitBreaker) bool {
	return cb == nil || cb.ResetOnHealthyTask == nil || *cb.ResetOnHealthyTask
}

// ecsAdvance replays the scheduler up to now. Callers hold w.Mu.
func (w *World) ecsAdvance() {
	st := w.ecs()
	now := w.Clock.Now()
	if st.now.IsZero() {
		st.now = now
	}
	for guard := 0; guard < 1_000_000; guard++ {
		at, ok := w.ecsNextEvent(st.now, now)
		if !ok {
			break
		}
		st.now = at
		for _, arn := range st.taskOrder {
			t := st.Tasks[arn]
			if t == nil {
				continue
			}
			for len(t.queue) > 0 && !t.queue[0].at.After(at) {
				a := t.queue[0]
				t.queue = t.queue[1:]
				a.do(a.at)
			}
			if exit, ok := t.processExit(at); ok && !exit.After(at) {
				_, code, _ := t.proc.Exit(at)
				w.failTask(t, at, ecstypes.TaskStopCodeEssentialContainerExited, "Essential container in task exited", &code)
			}
		}
		w.reconcileAll(at)
		w.ecsShipLogs(at)
		w.ecsEmitChanges(at)
	}
	if now.After(st.now) {
		st.now = now
	}
	w.reconcileAll(st.now)
	w.ecsShipLogs(st.now)
	w.ecsEmitChanges(st.now)
	w.ecsPurge(st.now)
}

// ecsNextEvent is the earliest pending transition in (after, until].
func (w *World) ecsNextEvent(after, until time.Time) (time.Time, bool) {
	var best time.Time
	consider := func(t time.Time) {
		if t.IsZero() || !t.After(after) || t.After(until) {
			return
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	st := w.ecs()
	for _, t := range st.Tasks {
		if at, ok := t.processExit(after); ok && !at.After(until) {
			if !at.After(after) {
				return after, true
			}
			consider(at)
		}
		if len(t.queue) == 0 || t.queue[0].at.After(until) {
			continue
		}
		if !t.queue[0].at.After(after) {
			// Due already (a zero duration): process it now.
			return after, true
		}
		consider(t.queue[0].at)
	}
	for _, s := range st.Services {
		for _, d := range s.Deployments {
			consider(d.startAt)
			consider(d.nextLaunchAt)
			if !d.steadySince.IsZero() {
				consider(d.steadySince.Add(w.timings.SteadyStateWindow))
			}
		}
	}
	return best, !best.IsZero()
}

func (w *World) reconcileAll(at time.Time) {
	st := w.ecs()
	for _, arn := range sortedKeys(st.Services) {
		w.reconcile(st.Services[arn], at)
	}
}

func (w *World) ecsPurge(now time.Time) {
	st := w.ecs()
	var order []string
	for _, arn := range st.taskOrder {
		t := st.Tasks[arn]
		if t.LastStatus == "STOPPED" && now.Sub(t.Stopped) >= w.timings.StoppedTaskRetention {
			delete(st.Tasks, arn)
			continue
		}
		order = append(order, arn)
	}
	st.taskOrder = order
	for arn, s := range st.Services {
		if s.Status == "INACTIVE" && now.Sub(s.InactiveAt) >= w.timings.InactiveServiceRetention {
			delete(st.Services, arn)
		}
	}
	// DELETE_IN_PROGRESS task definitions go away once nothing uses them.
	for fam, revs := range st.Families {
		for i, td := range revs {
			if td == nil || td.Def.Status != ecstypes.TaskDefinitionStatusDeleteInProgress || now.Sub(td.DeleteRequested) < time.Minute {
				continue
			}
			inUse := false
			for _, t := range st.Tasks {
				inUse = inUse || (t.TDARN == aws.ToString(td.Def.TaskDefinitionArn) && t.LastStatus != "STOPPED")
			}
			if !inUse {
				revs[i] = nil
			}
		}
		st.Families[fam] = revs
	}
}

func (w *World) addEvent(s *ecsSvc, at time.Time, format string, args ...any) {
	msg := fmt.Sprintf("(service %s) ", s.Name) + fmt.Sprintf(format, args...)
	s.Events = append(s.Events, ecstypes.ServiceEvent{CreatedAt: aws.Time(at), Id: aws.String(uuidFrom(fmt.Sprintf("event#%s#%d", s.ARN, w.NextSeq("ecs-event")))), Message: aws.String(msg)})
	if len(s.Events) > 100 {
		s.Events = s.Events[len(s.Events)-100:]
	}
}

// aliveTasks are the service's tasks the scheduler still wants running.
func (w *World) aliveTasks(s *ecsSvc) (byDep map[*ecsDep][]*ecsTask) {
	byDep = map[*ecsDep][]*ecsTask{}
	for _, arn := range w.ecs().taskOrder {
		t := w.ecs().Tasks[arn]
		if t.ServiceARN == s.ARN && t.DesiredStatus == "RUNNING" && t.svcGen == s.gen {
			byDep[t.Dep] = append(byDep[t.Dep], t)
		}
	}
	return byDep
}

func (w *World) reconcile(s *ecsSvc, at time.Time) {
	if s.Status == "INACTIVE" || len(s.Deployments) == 0 {
		return
	}
	byDep := w.aliveTasks(s)
	prim := s.Deployments[0]
	if s.Status == "DRAINING" {
		for _, ts := range byDep {
			for _, t := range ts {
				w.stopTask(t, at, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+prim.ID+")")
			}
		}
		for _, t := range w.ecs().Tasks {
			if t.ServiceARN == s.ARN && t.svcGen == s.gen && t.LastStatus != "STOPPED" {
				return
			}
		}
		s.Status = "INACTIVE"
		s.InactiveAt = at
		return
	}
	if sd := prim.SD; sd != nil && sd.Status == ecstypes.ServiceDeploymentStatusPending && !at.Before(prim.startAt) {
		sd.Status = ecstypes.ServiceDeploymentStatusInProgress
		sd.Started = at
		sd.Updated = at
	}
	if at.Before(prim.startAt) {
		return
	}
	desired := int(s.Desired)
	maxTotal := desired * int(aws.ToInt32(s.DepConf.MaximumPercent)) / 100
	minHealthy := int(math.Ceil(float64(desired) * float64(aws.ToInt32(s.DepConf.MinimumHealthyPercent)) / 100))
	p := byDep[prim]
	var others []*ecsTask
	for _, d := range s.Deployments[1:] {
		others = append(others, byDep[d]...)
	}
	// Scale in the primary beyond the desired count (not-yet-healthy first).
	if len(p) > desired {
		sort.SliceStable(p, func(i, j int) bool { return !p[i].healthy() && p[j].healthy() })
		for _, t := range p[:len(p)-desired] {
			w.stopTask(t, at, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+prim.ID+")")
		}
		p = p[len(p)-desired:]
	}
	// Launch within maximumPercent; a FAILED deployment without rollback
	// launches nothing more (docs/research/aws-ecs.md §4.1).
	if prim.Rollout != ecstypes.DeploymentRolloutStateFailed && !at.Before(prim.nextLaunchAt) {
		n := min(desired-len(p), maxTotal-len(p)-len(others))
		var started []string
		// A launch that fails at once (a role ECS cannot assume yet) backs
		// off the rest, and may fail the deployment.
		for i := 0; i < n && s.Deployments[0] == prim && prim.Rollout != ecstypes.DeploymentRolloutStateFailed && !at.Before(prim.nextLaunchAt); i++ {
			if t := w.launchTask(s, prim, at); t != nil {
				p = append(p, t)
				started = append(started, t.ID)
			}
		}
		if len(started) > 0 {
			w.addEvent(s, at, "has started %d tasks: (task %s).", len(started), strings.Join(started, ") (task "))
		}
	}
	// Stop old tasks while keeping minimumHealthyPercent healthy: with
	// 100/200 the old task drains only after the new one is healthy.
	healthy := 0
	for _, t := range append(append([]*ecsTask{}, p...), others...) {
		if t.healthy() {
			healthy++
		}
	}
	sort.SliceStable(others, func(i, j int) bool { return !others[i].healthy() && others[j].healthy() })
	var stopped []string
	for _, t := range others {
		if !t.healthy() {
			w.stopTask(t, at, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+prim.ID+")")
			stopped = append(stopped, t.ID)
		} else if healthy-1 >= minHealthy {
			w.stopTask(t, at, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+prim.ID+")")
			stopped = append(stopped, t.ID)
			healthy--
		}
	}
	if len(stopped) > 0 {
		w.addEvent(s, at, "has stopped %d running tasks: (task %s).", len(stopped), strings.Join(stopped, ") (task "))
	}
	// Old deployments whose tasks are all gone leave the list.
	var keep []*ecsDep
	for i, d := range s.Deployments {
		if i > 0 && !w.depHasTasks(s, d) {
			d.Status = "INACTIVE"
			continue
		}
		keep = append(keep, d)
	}
	s.Deployments = keep
	// Steady state: all desired tasks of the primary healthy, nothing else
	// left, for SteadyStateWindow.
	if prim.Rollout == ecstypes.DeploymentRolloutStateInProgress {
		steady := len(p) == desired && len(s.Deployments) == 1
		for _, t := range p {
			steady = steady && t.healthy()
		}
		switch {
		case !steady:
			prim.steadySince = time.Time{}
		case prim.steadySince.IsZero():
			prim.steadySince = at
		case at.Sub(prim.steadySince) >= w.timings.SteadyStateWindow:
			w.completeDeployment(s, prim, at)
		}
	}
}

func (w *World) depHasTasks(s *ecsSvc, d *ecsDep) bool {
	for _, t := range w.ecs().Tasks {
		if t.Dep == d && t.LastStatus != "STOPPED" {
			return true
		}
	}
	return false
}

func (w *World) completeDeployment(s *ecsSvc, d *ecsDep, at time.Time) {
	d.Rollout = ecstypes.DeploymentRolloutStateCompleted
	d.RolloutReason = "ECS deployment " + d.ID + " completed."
	d.Updated = at
	d.steadySince = time.Time{}
	s.lastCompleted = d
	w.addEvent(s, at, "(deployment %s) deployment completed.", d.ID)
	w.addEvent(s, at, "has reached a steady state.")
	if sd := d.SD; sd != nil {
		if d.rollback {
			sd.Status = ecstypes.ServiceDeploymentStatusRollbackSuccessful
			sd.StatusReason = "Service deployment rolled back because the circuit breaker threshold was exceeded."
		} else {
			sd.Status = ecstypes.ServiceDeploymentStatusSuccessful
		}
		sd.Finished, sd.Updated = at, at
		if sd.CB.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoring {
			sd.CB.Status = ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
		}
	}
}

// taskFailed counts a task of d that failed to start or exited, for the
// deployment circuit breaker (docs/research/aws-ecs.md §4.1).
func (w *World) taskFailed(t *ecsTask, at time.Time) {
	d := t.Dep
	s := w.ecs().Services[t.ServiceARN]
	if d == nil || s == nil || s.gen != t.svcGen {
		return
	}
	d.Failed++
	d.nextLaunchAt = at.Add(w.timings.RelaunchDelay)
	if d.Rollout != ecstypes.DeploymentRolloutStateInProgress {
		return
	}
	if sd := d.SD; sd != nil && sd.CB.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		sd.CB.FailureCount++
	}
	cb := s.DepConf.DeploymentCircuitBreaker
	if cb == nil || !cb.Enable || d.Failed < circuitBreakerThreshold(s.Desired, cb) {
		return
	}
	w.failDeployment(s, d, cb.Rollback, at)
}

func (w *World) failDeployment(s *ecsSvc, d *ecsDep, rollback bool, at time.Time) {
	d.Rollout = ecstypes.DeploymentRolloutStateFailed
	d.RolloutReason = "ECS deployment circuit breaker: tasks failed to start."
	d.Updated = at
	d.steadySince = time.Time{}
	w.addEvent(s, at, "(deployment %s) deployment failed: tasks failed to start.", d.ID)
	sd := d.SD
	if sd != nil {
		sd.CB.Status = ecstypes.ServiceDeploymentRollbackMonitorsStatusTriggered
		sd.Updated = at
	}
	prev := s.lastCompleted
	switch {
	case sd == nil:
	case d.rollback:
		sd.Status = ecstypes.ServiceDeploymentStatusRollbackFailed
		sd.StatusReason = "ECS deployment circuit breaker: the rollback deployment failed: tasks failed to start."
		sd.Finished, sd.Stopped = at, at
	case rollback && prev != nil && prev != d:
		// Roll back to the last COMPLETED deployment's task definition; the
		// first deployment has nothing to roll back to (docs/research/aws-ecs.md §4.1).
		rb := w.newDeployment(s, prev.TD, clone(prev.Net), at, sd)
		rb.rollback = true
		rb.startAt = at
		rb.RolloutReason = "ECS deployment circuit breaker: rolling back to deploymentId " + prev.ID + "."
		s.TaskDef = prev.TD
		sd.Status = ecstypes.ServiceDeploymentStatusRollbackInProgress
		sd.StatusReason = "ECS deployment circuit breaker: tasks failed to start."
		sd.Rollback = &ecstypes.Rollback{Reason: aws.String("Service deployment rolled back because the circuit breaker threshold was exceeded."),
			StartedAt: aws.Time(at), ServiceRevisionArn: aws.String(prev.revisionARN)}
		w.addEvent(s, at, "rolling back to deployment %s.", prev.ID)
	default:
		sd.Status = ecstypes.ServiceDeploymentStatusStopped
		sd.StatusReason = "ECS deployment circuit breaker: tasks failed to start."
		if rollback {
			sd.StatusReason += " There is no previous COMPLETED deployment to roll back to."
		}
		sd.Finished, sd.Stopped = at, at
	}
}

// newDeployment makes d the PRIMARY deployment of s (and, with sd nil, a new
// service deployment for it). Callers hold w.Mu.
func (w *World) newDeployment(s *ecsSvc, tdARN string, net *ecstypes.NetworkConfiguration, at time.Time, sd *svcDeployment) *ecsDep {
	seq := w.NextSeq("ecs-deployment")
	d := &ecsDep{ID: "ecs-svc/" + token(fmt.Sprintf("dep#%s#%d", s.ARN, seq), 1, "123456789") + token(fmt.Sprintf("dep#%s#%d", s.ARN, seq), 18, "0123456789"),
		Status: "PRIMARY", TD: tdARN, Net: net, Created: at, Updated: at, Rollout: ecstypes.DeploymentRolloutStateInProgress,
		startAt: at.Add(w.timings.DeploymentStart), PlatformVersion: s.PlatformVersion}
	d.RolloutReason = "ECS deployment " + d.ID + " in progress."
	d.revisionARN = w.ecsARN(fmt.Sprintf("service-revision/%s/%s/%s", s.ClusterName, s.Name, strings.TrimPrefix(d.ID, "ecs-svc/")))
	var sources []*ecsDep
	for _, old := range s.Deployments {
		old.Status = "ACTIVE"
		sources = append(sources, old)
		if old.SD != nil && old.SD != sd {
			switch old.SD.Status {
			case ecstypes.ServiceDeploymentStatusPending, ecstypes.ServiceDeploymentStatusInProgress, ecstypes.ServiceDeploymentStatusRollbackInProgress:
				old.SD.Status = ecstypes.ServiceDeploymentStatusStopped
				old.SD.StatusReason = "Service deployment stopped because a new service deployment started."
				old.SD.Stopped, old.SD.Finished, old.SD.Updated = at, at, at
			}
		}
	}
	if sd == nil {
		sd = &svcDeployment{ARN: w.ecsARN(fmt.Sprintf("service-deployment/%s/%s/%s", s.ClusterName, s.Name, token(fmt.Sprintf("sd#%s#%d", s.ARN, seq), 22, alnumMixed))),
			Status: ecstypes.ServiceDeploymentStatusPending, Created: at, Updated: at, target: d, DepConf: clone(s.DepConf)}
		for _, old := range sources {
			sd.sources = append(sd.sources, old)
		}
		sd.CB = ecstypes.ServiceDeploymentCircuitBreaker{Status: ecstypes.ServiceDeploymentRollbackMonitorsStatusDisabled, Threshold: circuitBreakerThreshold(s.Desired, s.DepConf.DeploymentCircuitBreaker)}
		if cb := s.DepConf.DeploymentCircuitBreaker; cb != nil && cb.Enable {
			sd.CB.Status = ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoring
		}
		s.SDs = append(s.SDs, sd)
		s.CurrentSD = sd.ARN
	}
	d.SD = sd
	s.Deployments = append([]*ecsDep{d}, s.Deployments...)
	return d
}

// launchTask places one Fargate task of deployment d. Callers hold w.Mu.
func (w *World) launchTask(s *ecsSvc, d *ecsDep, at time.Time) *ecsTask {
	td := w.findTD(d.TD)
	if td == nil || d.Net == nil || d.Net.AwsvpcConfiguration == nil || len(d.Net.AwsvpcConfiguration.Subnets) == 0 {
		return nil
	}
	t := w.placeTask(s.ClusterName, td, d.Net.AwsvpcConfiguration, at)
	t.ServiceARN, t.ServiceName, t.Dep, t.svcGen, t.StartedBy, t.Group = s.ARN, s.Name, d, s.gen, d.ID, "service:"+s.Name
	if s.PropagateTags == ecstypes.PropagateTagsService {
		t.Tags = clone(s.Tags)
	} else if s.PropagateTags == ecstypes.PropagateTagsTaskDefinition {
		t.Tags = clone(td.Tags)
	}
	if msg := w.assumeTaskRoles(t, at); msg != "" {
		w.addEvent(s, at, "failed to launch a task with (error %s).", msg)
		w.failTask(t, at, ecstypes.TaskStopCodeTaskFailedToStart, msg, nil)
		return nil
	}
	t.schedule(at.Add(w.timings.TaskProvisioning), func(at time.Time) { w.taskProvisioned(t, at) })
	return t
}

// placeTask creates a PROVISIONING Fargate task of td in cluster, with its
// ENI in one of the configuration's subnets. Callers hold w.Mu.
func (w *World) placeTask(cluster string, td *ecsTD, vpc *ecstypes.AwsVpcConfiguration, at time.Time) *ecsTask {
	st := w.ecs()
	seq := w.NextSeq("ecs-task")
	id := token(fmt.Sprintf("task#%d", seq), 32, hexDigits)
	subnet := vpc.Subnets[(seq-1)%len(vpc.Subnets)]
	publicIP := vpc.AssignPublicIp == ecstypes.AssignPublicIpEnabled
	attachment := uuidFrom("attachment#" + id)
	eni := w.TaskENI(subnet, vpc.SecurityGroups, w.ecsARN("attachment/"+attachment), publicIP)
	suffix := "ec2.internal"
	if w.Region != "us-east-1" {
		suffix = w.Region + ".compute.internal"
	}
	t := &ecsTask{ID: id, ARN: w.ecsARN("task/" + cluster + "/" + id), ClusterName: cluster,
		TDARN: aws.ToString(td.Def.TaskDefinitionArn), Def: clone(td.Def),
		LastStatus: "PROVISIONING", DesiredStatus: "RUNNING", Health: ecstypes.HealthStatusUnknown, Created: at,
		ENIID: eni.ID, SubnetID: subnet, PrivateIP: eni.PrivateIP, PublicIP: publicIP, AttachmentID: attachment,
		Hostname: "ip-" + strings.ReplaceAll(eni.PrivateIP, ".", "-") + "." + suffix, Version: 1}
	if sn, ok := w.EC2State().Subnets[subnet]; ok {
		t.AZ = sn.AZ
	}
	c := t.essential()
	t.Image = aws.ToString(c.Image)
	t.Behavior = w.ImageBehaviorOf(t.Image)
	st.Tasks[t.ARN] = t
	st.taskOrder = append(st.taskOrder, t.ARN)
	return t
}

// assumeTaskRoles: ECS assumes the task's roles when it launches the task;
// a role IAM has not propagated yet fails the launch
// (docs/research/aws-ecs.md §5.2). It returns the failure, "" when none.
func (w *World) assumeTaskRoles(t *ecsTask, at time.Time) string {
	roles := []string{aws.ToString(t.Def.ExecutionRoleArn), aws.ToString(t.Def.TaskRoleArn)}
	if t.Overrides != nil {
		roles = append(roles, aws.ToString(t.Overrides.TaskRoleArn), aws.ToString(t.Overrides.ExecutionRoleArn))
	}
	for _, role := range roles {
		if role == "" || w.roleAssumableByECSAt(role, at) {
			continue
		}
		return "ECS was unable to assume the role '" + role + "' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
	}
	return ""
}

// taskProvisioned: the ENI is attached; ECS fetches the secrets and the
// registry's credentials, then pulls the image. Each needs its own network
// path (reach.go): Secrets Manager's endpoint for secrets, and the image's
// registry, Docker Hub over the internet or ECR through the internet or its
// VPC endpoints. Each failure mode of docs/research/aws-ecs.md §3 and §7
// stops the task with the reason ECS gives.
func (w *World) taskProvisioned(t *ecsTask, at time.Time) {
	t.LastStatus = "PENDING"
	t.PullStarted = at
	t.Version++
	t.Internet, _ = w.InternetReach(t.SubnetID, t.PublicIP)
	c := t.essential()
	timeout := func(reason string) {
		t.schedule(at.Add(w.timings.NoInternetTimeout), func(at time.Time) { w.failTask(t, at, ecstypes.TaskStopCodeTaskFailedToStart, reason, nil) })
	}
	registry, ecrRegion := registryOf(t.Image)
	for _, sec := range c.Secrets {
		svc := "secretsmanager"
		if strings.HasPrefix(aws.ToString(sec.ValueFrom), "arn:aws:ssm:") {
			svc = "ssm"
		}
		if ok, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Service: svc}); !ok {
			timeout("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): RequestError: send request failed caused by: Post \"https://" + svc + "." + w.Region + ".amazonaws.com/\": dial tcp 52.94.133.131:443: i/o timeout. Please check your task network configuration.")
			return
		}
	}
	if ecrRegion != "" {
		if ok, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Service: "ecr.api"}); !ok || ecrRegion != w.Region && !t.Internet {
			timeout("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post \"https://api.ecr." + ecrRegion + ".amazonaws.com/\": dial tcp 52.46.143.206:443: i/o timeout. Please check your task network configuration.")
			return
		}
		okDkr, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Service: "ecr.dkr"})
		okS3, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Service: "s3"})
		if !okDkr || !okS3 {
			timeout("CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get \"https://prod-" + ecrRegion + "-starport-layer-bucket.s3." + ecrRegion + ".amazonaws.com/\": dial tcp 52.217.1.124:443: i/o timeout")
			return
		}
	} else if ok, _ := w.Reach(t.SubnetID, t.PublicIP, Destination{Host: registry}); !ok {
		timeout("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref " + qualifiedImage(t.Image) + ": failed to do request: Head \"https://" + registry + "/v2/\": dial tcp 54.227.20.253:443: i/o timeout")
		return
	}
	t.Secrets = map[string]string{}
	for _, sec := range c.Secrets {
		val, why := w.readSecretFor(t, aws.ToString(sec.ValueFrom))
		if why != "" {
			reason := "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): " + why
			t.Secrets = nil
			t.schedule(at.Add(w.timings.SecretFailure), func(at time.Time) { w.failTask(t, at, ecstypes.TaskStopCodeTaskFailedToStart, reason, nil) })
			return
		}
		t.Secrets[aws.ToString(sec.Name)] = val
	}
	if t.Behavior.PullFails {
		ref := qualifiedImage(t.Image)
		reason := "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref " + ref + ": " + ref + ": not found"
		t.schedule(at.Add(w.timings.PullFailure), func(at time.Time) { w.failTask(t, at, ecstypes.TaskStopCodeTaskFailedToStart, reason, nil) })
		return
	}
	t.schedule(at.Add(w.timings.ImagePull), func(at time.Time) {
		if why := w.startLogging(t, at); why != "" {
			w.failTask(t, at, ecstypes.TaskStopCodeTaskFailedToStart, why, nil)
			return
		}
		w.taskRunning(t, at)
	})
}

// readSecretFor resolves a container secret's valueFrom with the task's
// execution role, returning the value or why it cannot be read.
func (w *World) readSecretFor(t *ecsTask, valueFrom string) (string, string) {
	role := aws.ToString(t.Def.ExecutionRoleArn)
	roleName := role[strings.LastIndex(role, "/")+1:]
	id := valueFrom
	if strings.HasPrefix(id, "arn:aws:ssm:") {
		name := id[strings.Index(id, ":parameter")+len(":parameter"):]
		p, ok := w.ssmParams()[name]
		if !ok {
			p, ok = w.ssmParams()[strings.TrimPrefix(name, "/")]
		}
		if !w.RoleAllows(role, "ssm:GetParameters", id) {
			return "", "AccessDeniedException: User: arn:aws:sts::" + w.Account + ":assumed-role/" + roleName + "/" + t.ID + " is not authorized to perform: ssm:GetParameters on resource: " + id
		}
		if !ok {
			return "", "ParameterNotFound: invalid parameters: " + name
		}
		return p.Value, ""
	}
	// A secret ARN may carry ":json-key:version-stage:version-id"; the
	// secret itself is the first seven parts (docs/research/aws-ecs.md §1.2).
	if parts := strings.Split(id, ":"); strings.HasPrefix(id, "arn:") && len(parts) > 7 {
		id = strings.Join(parts[:7], ":")
	}
	sec := w.findSecret(id)
	resource := id
	if sec != nil {
		resource = sec.ARN
	}
	if !w.RoleAllows(role, "secretsmanager:GetSecretValue", resource) {
		return "", "AccessDeniedException: User: arn:aws:sts::" + w.Account + ":assumed-role/" + roleName + "/" + t.ID + " is not authorized to perform: secretsmanager:GetSecretValue on resource: " + valueFrom + " because no identity-based policy allows the secretsmanager:GetSecretValue action status code: 400"
	}
	if sec == nil {
		return "", "ResourceNotFoundException: Secrets Manager can't find the specified secret."
	}
	val, ok := w.SecretValue(sec.ARN)
	if !ok {
		return "", "InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion."
	}
	return val, ""
}

func (w *World) taskRunning(t *ecsTask, at time.Time) {
	t.LastStatus = "RUNNING"
	t.Started, t.PullStopped, t.Connectivity = at, at, at
	t.Version++
	w.sdRegisterTask(t)
	c := t.essential()
	t.proc = w.startProcess(w.containerStart(t))
	if hc := c.HealthCheck; hc != nil {
		// Docker runs the first check one interval after the container
		// starts, then every interval (docs/research/aws-ecs.md §4.4).
		t.schedule(at.Add(hcInterval(hc)), func(at time.Time) { w.healthProbe(t, at) })
	}
	if d := t.Behavior.CrashAfter; d > 0 {
		t.schedule(at.Add(d), func(at time.Time) {
			code := t.Behavior.ExitCode
			w.failTask(t, at, ecstypes.TaskStopCodeEssentialContainerExited, "Essential container in task exited", &code)
		})
	}
}

// containerStart is what the essential container starts with: its command
// and environment after the run's overrides, the secrets the execution role
// fetched, and the task's network. Callers hold w.Mu.
func (w *World) containerStart(t *ecsTask) ContainerStart {
	c := t.essential()
	env := map[string]string{}
	for _, kv := range c.Environment {
		env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	cmd := append([]string(nil), c.Command...)
	taskRole := aws.ToString(t.Def.TaskRoleArn)
	if o := t.Overrides; o != nil {
		if r := aws.ToString(o.TaskRoleArn); r != "" {
			taskRole = r
		}
		for _, co := range o.ContainerOverrides {
			if aws.ToString(co.Name) != aws.ToString(c.Name) {
				continue
			}
			if len(co.Command) > 0 {
				cmd = append([]string(nil), co.Command...)
			}
			for _, kv := range co.Environment {
				env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
			}
		}
	}
	return ContainerStart{TaskARN: t.ARN, ClusterARN: w.ecsARN("cluster/" + t.ClusterName), TaskDefinitionARN: t.TDARN,
		Group: t.Group, StartedBy: t.StartedBy, Hostname: t.Hostname, Container: aws.ToString(c.Name), Image: t.Image,
		Command: cmd, Env: env, Secrets: copyTags(t.Secrets), TaskRoleARN: taskRole, StartedAt: t.Started, Behavior: t.Behavior,
		Reach: func(d Destination) (bool, string) { return w.Reach(t.SubnetID, t.PublicIP, d) }}
}

// processExit is when the container's program exits, as far as is known at
// now (only for a running container with a program).
func (t *ecsTask) processExit(now time.Time) (time.Time, bool) {
	if t.proc == nil || t.LastStatus != "RUNNING" || t.DesiredStatus != "RUNNING" {
		return time.Time{}, false
	}
	at, _, ok := t.proc.Exit(now)
	if ok && at.Before(now) {
		at = now
	}
	return at, ok
}

func hcInterval(hc *ecstypes.HealthCheck) time.Duration {
	if iv := aws.ToInt32(hc.Interval); iv > 0 {
		return time.Duration(iv) * time.Second
	}
	return 30 * time.Second
}

// healthProbe runs the container health check once, as ECS's agent does
// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html):
// a pass makes the container HEALTHY (inside startPeriod too: "If a health
// check succeeds within the startPeriod, then the container is considered
// healthy and any subsequent failures count toward the maximum number of
// retries"); failures inside startPeriod before any pass do not count;
// `retries` consecutive counted failures make it UNHEALTHY. What the command
// answers comes from the container's program (runtime.go). Callers hold w.Mu.
func (w *World) healthProbe(t *ecsTask, at time.Time) {
	if t.LastStatus != "RUNNING" || t.DesiredStatus != "RUNNING" {
		return
	}
	hc := t.essential().HealthCheck
	pass := plainProbe(hc.Command)
	if t.proc != nil {
		pass = t.proc.Probe(at, hc.Command)
	}
	startPeriod := time.Duration(aws.ToInt32(hc.StartPeriod)) * time.Second
	retries := int(aws.ToInt32(hc.Retries))
	if retries <= 0 {
		retries = 3
	}
	switch {
	case pass:
		t.hcFails, t.hcPassed = 0, true
		if t.Health != ecstypes.HealthStatusHealthy {
			t.Health = ecstypes.HealthStatusHealthy
			t.Version++
			w.taskHealthy(t, at)
		}
	case t.hcPassed || !at.Before(t.Started.Add(startPeriod)):
		t.hcFails++
		if t.hcFails >= retries {
			t.Health = ecstypes.HealthStatusUnhealthy
			t.Version++
			w.taskUnhealthy(t, at)
			return
		}
	}
	t.schedule(at.Add(hcInterval(hc)), func(at time.Time) { w.healthProbe(t, at) })
}

// taskHealthy: a task of an in-progress deployment passing its health check
// resets the circuit breaker's count (resetsOnHealthyTask).
func (w *World) taskHealthy(t *ecsTask, at time.Time) {
	d := t.Dep
	s := w.ecs().Services[t.ServiceARN]
	if d == nil || s == nil || s.gen != t.svcGen || d.Rollout != ecstypes.DeploymentRolloutStateInProgress ||
		!resetsOnHealthyTask(s.DepConf.DeploymentCircuitBreaker) {
		return
	}
	d.Failed = 0
	if d.SD != nil && d.SD.CB.Status == ecstypes.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		d.SD.CB.FailureCount = 0
	}
}

// taskUnhealthy: the service scheduler replaces a task whose essential
// container is UNHEALTHY, and the circuit breaker counts it
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html:
// stage 2 counts health-check failures). A task outside a service keeps
// running, UNHEALTHY.
func (w *World) taskUnhealthy(t *ecsTask, at time.Time) {
	s := w.ecs().Services[t.ServiceARN]
	if s == nil || s.gen != t.svcGen {
		return
	}
	w.addEvent(s, at, "(task %s) failed container health checks.", t.ID)
	w.stopTask(t, at, ecstypes.TaskStopCodeServiceSchedulerInitiated, "Task failed container health checks")
	w.taskFailed(t, at)
}

// failTask stops a task that failed to start or whose essential container
// exited; it counts for the circuit breaker.
func (w *World) failTask(t *ecsTask, at time.Time, code ecstypes.TaskStopCode, reason string, exit *int32) {
	if t.DesiredStatus == "STOPPED" && t.StopCode != "" {
		return
	}
	t.queue = nil
	t.DesiredStatus = "STOPPED"
	t.StopCode, t.StoppedReason = code, reason
	t.Stopping, t.ExecStopped = at, at
	t.ExitCode = exit
	if exit == nil && code == ecstypes.TaskStopCodeTaskFailedToStart {
		t.ContainerReason = reason
	}
	if t.LastStatus == "RUNNING" {
		t.Health = ecstypes.HealthStatusUnhealthy
	}
	t.LastStatus = "DEPROVISIONING"
	t.Version++
	w.sdDeregisterTask(t)
	t.schedule(at.Add(w.timings.FailedTaskStop), func(at time.Time) { w.taskStopped(t, at) })
	w.taskFailed(t, at)
}

// stopTask is the scheduler stopping a task (scale-in, replacement, delete).
func (w *World) stopTask(t *ecsTask, at time.Time, code ecstypes.TaskStopCode, reason string) {
	if t.DesiredStatus == "STOPPED" {
		return
	}
	t.queue = nil
	t.DesiredStatus = "STOPPED"
	t.StopCode, t.StoppedReason = code, reason
	t.Stopping = at
	t.Version++
	if t.proc != nil {
		t.proc.Stopped(at)
	}
	if t.LastStatus != "RUNNING" {
		// Not started yet: nothing to drain.
		t.LastStatus = "DEPROVISIONING"
		t.schedule(at.Add(w.timings.FailedTaskStop), func(at time.Time) { w.taskStopped(t, at) })
		return
	}
	t.LastStatus = "DEACTIVATING"
	w.sdDeregisterTask(t)
	t.schedule(at.Add(w.timings.TaskDrain/6), func(at time.Time) { t.LastStatus = "STOPPING"; t.Version++ })
	t.schedule(at.Add(w.timings.TaskDrain*5/6), func(at time.Time) {
		t.LastStatus = "DEPROVISIONING"
		t.ExecStopped = at
		zero := int32(0)
		t.ExitCode = &zero
		t.Version++
	})
	t.schedule(at.Add(w.timings.TaskDrain), func(at time.Time) { w.taskStopped(t, at) })
}

func (w *World) taskStopped(t *ecsTask, at time.Time) {
	t.LastStatus = "STOPPED"
	t.Stopped = at
	t.Version++
	w.ReleaseTaskENI(t.ENIID)
}
