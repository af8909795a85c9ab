package prefectsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/deploybot/deploybot/internal/awssim"
)

// The simulated Prefect ECS workers that run flow runs. A running task of
// the simulated account whose container is a worker of this server
// (worker.go) polls its pool every WorkerQueryInterval of the world's
// clock, as `prefect worker start --type ecs` does, and submits runs
// through the real AWS SDK against the simulated account with its task
// role's credentials (World.RoleConfig), so that IAM, ECS and EC2 judge
// what it does as they would a real worker's calls. The rules, with
// docs/research/prefect-flow-runs.md as "§" and Prefect's sources as
// "base" (src/prefect/workers/base.py), "ew"
// (prefect_aws/workers/ecs_worker.py), "obs" (prefect_aws/observers/ecs.py):
//   - a worker polls only while its syncs with the API succeed; it polls the
//     queues of its --work-queue arguments, or every queue of the pool
//     without them (api/workers.py:834-842), for SCHEDULED runs whose
//     expected start is at most WorkerPrefetch away, in a pool that is not
//     paused;
//   - submission (base:1555-1653): a run of a deleted deployment is
//     CANCELLED; the run log gets "Worker '<name>' submitting flow run
//     '<id>'"; PENDING is proposed (an ABORT skips the run); the job
//     configuration is resolved (jobconfig.go); the run gets the labels
//     prefect.worker.name/type and prefect.work-pool.name/id
//     (base:1986-2004) and PENDING "Submitting"; then the ECS calls of
//     _prepare_and_create_task (ew:776-866): a task definition from the
//     per-deployment cache, the family's latest revision with
//     match_latest_revision_in_family, or RegisterTaskDefinition (3
//     attempts); DescribeVpcs/DescribeSubnets for the network (ew:1295-1383);
//     RunTask (3 attempts), its common failures reworded (ew:868-937). Any
//     error makes the run CRASHED "Failed to submit flow run to
//     infrastructure: <type>: <message>", Python's names for the exception
//     (botocore names an ECS error by its code, an EC2 one ClientError). On
//     success the run's infrastructure_pid is "<configured cluster or the
//     task's clusterArn>::<taskArn>" (ew:753-761);
//   - its network must reach each AWS endpoint it calls (NAT, public IP or a
//     VPC endpoint; reach.go in awssim), else botocore's
//     ConnectTimeoutError;
//   - cancellation (base:1844-1925) happens only with
//     PREFECT_WORKER_ENABLE_CANCELLATION true in the worker's environment
//     (its default is false: settings/models/worker.py:52-60): a CANCELLING
//     run that never started is StopTask'ed ("Stopped by Prefect worker",
//     ew:1685-1745) and marked CANCELLED "Flow run cancelled by worker
//     while pending.";
//   - the ECS observer (obs, §B): the queue named by
//     PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME (default
//     prefect-ecs-tasks-events) is resolved with GetQueueUrl (missing: a
//     warning and no observer; another error: a crash) and read with
//     ReceiveMessage(MaxNumberOfMessages=1, VisibilityTimeout=300); each
//     ECS task event's tags come from DescribeTasks(include TAGS) (an error
//     reads as no tags); for tasks tagged prefect.io/flow-run-id,
//     PROVISIONING/PENDING propose PENDING "InfrastructurePending" and
//     STOPPED proposes CRASHED for a non-zero or missing exit code of the
//     "prefect" container ("The following containers stopped with a
//     non-zero exit code: ['prefect']") or TaskFailedToStart ("ECS task
//     failed to start: <stoppedReason>. The capacity provider could not
//     place the task."), forwarding the CloudWatch lines of a run that
//     never ran; handled messages are deleted, a handler error (Prefect
//     unreachable) leaves the message for redelivery; crashes restart the
//     observer after 30·2^(n−1) s, five at most. Without the observer, a
//     flow-run task that dies before reaching Prefect leaves its run
//     PENDING (§ fact 3).
// Simplifications: the worker acts at its ticks (it does not long-poll
// SQS), AWS calls fail at once instead of after their timeouts, retries do
// not wait, and the worker's own requests to the API are not in Requests()
// (nor counted by the rate limit), like its heartbeats.

// afterFuncer is a clock that runs simulated processes (clock.Virtual).
type afterFuncer interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// driver runs the simulated workers while there are runs to work on.
type driver struct {
	armed   bool
	workers map[string]*simWorker // by task ARN
	log     []string
}

// simWorker is what a worker process keeps between polls.
type simWorker struct {
	taskARN, taskID, clusterARN, taskRole string
	spec                                  workerSpec
	env                                   map[string]string
	tdCache                               map[string]string // by deployment (or flow) id
	obs                                   observerState
	prefectOK                             bool // its syncs succeed now
}

type observerState struct {
	disabled, gaveUp bool
	queueURL         string
	restarts         int
	restartAt        time.Time
	recent           []bool // the last 3 receive outcomes (true: ok)
	backoffs         int
	nextPoll         time.Time
	tags             map[string]map[string]string
	tagOrder         []string
}

// WorkerLog returns what the simulated workers logged outside any flow run
// (the observer's warnings and crashes), for tests.
func (s *Server) WorkerLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.drv.log...)
}

func (s *Server) workerLogf(w *simWorker, format string, args ...any) {
	s.drv.log = append(s.drv.log, fmt.Sprintf("%s %s: ", ts(s.clock.Now()), w.spec.Name)+fmt.Sprintf(format, args...))
}

// armDriver schedules the workers' next tick if none is. Callers hold s.mu.
func (s *Server) armDriver() {
	if s.world == nil || s.drv.armed {
		return
	}
	af, ok := s.clock.(afterFuncer)
	if !ok {
		return
	}
	s.drv.armed = true
	af.AfterFunc(s.timings.WorkerQueryInterval, s.tick)
}

// driverNeeded: some run is not final yet. Callers hold s.mu.
func (s *Server) driverNeeded() bool {
	for _, r := range s.runs {
		if !terminal[r.state.typ] {
			return true
		}
	}
	return false
}

// tick is one poll of every live worker. It runs on the goroutine that
// advances the clock, without any lock held: the world is called first,
// and s.mu is never held across a call to the world.
func (s *Server) tick() {
	tasks := s.world.Tasks()
	s.mu.Lock()
	s.drv.armed = false
	now := s.clock.Now()
	s.sync(tasks, now)
	s.advanceRuns(now)
	workers := s.liveWorkers(tasks, now)
	s.mu.Unlock()
	for _, w := range workers {
		if w.prefectOK {
			s.cancelPending(w)
			s.submitScheduled(w)
		}
		s.observe(w)
	}
	s.mu.Lock()
	if s.driverNeeded() {
		s.armDriver()
	}
	s.mu.Unlock()
}

// liveWorkers are the running worker processes of this server. Callers
// hold s.mu.
func (s *Server) liveWorkers(tasks []Task, now time.Time) []*simWorker {
	if s.drv.workers == nil {
		s.drv.workers = map[string]*simWorker{}
	}
	var out []*simWorker
	for _, t := range tasks {
		if t.LastStatus != "RUNNING" || t.StartedAt.IsZero() {
			continue
		}
		spec, ok := s.parseWorker(t)
		if !ok || !s.servesURL(spec.APIURL) {
			continue
		}
		netOK := t.Internet
		if r, known := t.HostReach[hostOf(spec.APIURL)]; known {
			netOK = r
		}
		l := s.life(spec, t.StartedAt, netOK, t.Behavior.NoHeartbeat || t.Behavior.PullFails, t.StoppedAt)
		if now.Before(l.first) || l.until(now).Before(now) {
			continue // not up yet, or exited
		}
		w := s.drv.workers[t.ARN]
		if w == nil {
			w = &simWorker{taskARN: t.ARN, taskID: t.ARN[strings.LastIndex(t.ARN, "/")+1:], tdCache: map[string]string{}}
			s.drv.workers[t.ARN] = w
		}
		w.spec, w.clusterARN, w.taskRole = spec, t.ClusterARN, t.TaskRoleARN
		w.env = map[string]string{}
		for k, v := range t.Env {
			w.env[k] = v
		}
		for k, v := range t.Secrets {
			w.env[k] = v
		}
		w.prefectOK = l.ok(now)
		out = append(out, w)
	}
	return out
}

// awsClient is the worker's AWS access: its task role's credentials, and
// whether its network reaches each endpoint.
type awsClient struct {
	s *Server
	w *simWorker
}

func (a awsClient) cfg() (aws.Config, error) {
	if a.w.taskRole == "" {
		return aws.Config{}, pyErr("NoCredentialsError", "Unable to locate credentials")
	}
	return a.s.world.RoleConfig(a.w.taskRole, a.w.taskID), nil
}

// reach checks the endpoint of service before a call.
func (a awsClient) reach(service string) error {
	if ok, _ := a.s.world.TaskReach(a.w.taskARN, awssim.Destination{Service: service}); !ok {
		return pyErr("ConnectTimeoutError", "Connect timeout on endpoint URL: \"https://%s.%s.amazonaws.com/\"", service, a.s.world.Region)
	}
	return nil
}

// client makes an SDK client for the task role (newClient is the
// service's NewFromConfig), once the task reaches the service's endpoint.
func client[C, O any](a awsClient, service string, newClient func(aws.Config, ...func(*O)) *C) (*C, error) {
	cfg, err := a.cfg()
	if err == nil {
		err = a.reach(service)
	}
	if err != nil {
		return nil, err
	}
	return newClient(cfg), nil
}

// botoError is an SDK error as botocore raises it: "An error occurred
// (<Code>) when calling the <Operation> operation: <Message>", of the
// service's modelled exception class (ECS's end in "Exception"; EC2 models
// none, so ClientError).
func botoError(err error) error {
	var se *submitError
	if errors.As(err, &se) {
		return se
	}
	service, op := "", ""
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		service, op = oe.ServiceID, oe.OperationName
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		typ := "ClientError"
		if service != "EC2" && strings.HasSuffix(ae.ErrorCode(), "Exception") {
			typ = ae.ErrorCode()
		}
		return &submitError{typ: typ, msg: fmt.Sprintf("An error occurred (%s) when calling the %s operation: %s", ae.ErrorCode(), op, ae.ErrorMessage())}
	}
	return &submitError{typ: "ClientError", msg: err.Error()}
}

// claimable are the runs a worker would get from get_scheduled_flow_runs,
// by expected start. Callers hold s.mu.
func (s *Server) claimable(w *simWorker, now time.Time) []string {
	p := s.pools[w.spec.Pool]
	if p == nil || p.paused {
		return nil
	}
	queues := map[string]bool{}
	for _, q := range w.spec.Queues {
		queues[q] = true
	}
	var rs []*flowRun
	for _, r := range s.runs {
		if r.pool != w.spec.Pool || r.state.typ != "SCHEDULED" || r.expectedStart.After(now.Add(s.timings.WorkerPrefetch)) {
			continue
		}
		if len(queues) > 0 && !queues[r.queue] {
			continue
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].expectedStart.Equal(rs[j].expectedStart) {
			return rs[i].expectedStart.Before(rs[j].expectedStart)
		}
		return rs[i].id < rs[j].id
	})
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	return ids
}

func (s *Server) submitScheduled(w *simWorker) {
	s.mu.Lock()
	ids := s.claimable(w, s.clock.Now())
	s.mu.Unlock()
	for _, id := range ids {
		s.submit(w, id)
	}
}

const workerLogger = "prefect.flow_runs.worker"

// submission is what the AWS part of a submission needs of the run.
type submission struct {
	run     flowRun
	pool    string
	job     *ecsJob
	region  string
	logs    []logLine
	pid     string
	taskARN string
}

func (sub *submission) info(format string, args ...any) {
	sub.logs = append(sub.logs, logLine{logger: workerLogger, level: 20, msg: fmt.Sprintf(format, args...)})
}

func (sub *submission) warn(format string, args ...any) {
	sub.logs = append(sub.logs, logLine{logger: workerLogger, level: 30, msg: fmt.Sprintf(format, args...)})
}

// submit is _submit_run for one run (base:1555-1653).
func (s *Server) submit(w *simWorker, id string) {
	s.mu.Lock()
	now := s.clock.Now()
	r := s.runs[id]
	if r == nil || r.state.typ != "SCHEDULED" {
		s.mu.Unlock()
		return
	}
	s.addLog(id, workerLogger, 20, now, fmt.Sprintf("Worker '%s' submitting flow run '%s'", w.spec.Name, id))
	if r.deploymentID != "" && s.deployments[r.deploymentID] == nil {
		s.setRunState(r, "CANCELLED", "", fmt.Sprintf("Deployment %s no longer exists, cancelled run.", r.deploymentID), now)
		s.mu.Unlock()
		return
	}
	if res := s.propose(r, "PENDING", "", "", false, now); res.status != "ACCEPT" {
		s.addLog(id, workerLogger, 20, now, fmt.Sprintf("Aborted submission of flow run '%s'. Server sent an abort signal: %s", id, res.reason))
		s.mu.Unlock()
		return
	}
	p := s.pools[r.pool]
	tmpl := p.baseTemplate
	if len(asMap(tmpl["job_configuration"])) == 0 {
		tmpl = ecsDefaultTemplate()
	}
	var depVars map[string]any
	wc := workerContext{workerName: w.spec.Name, poolName: p.name, poolID: p.id, workerEnv: w.env, run: r}
	if d := s.deployments[r.deploymentID]; d != nil {
		depVars, _ = d.fields["job_variables"].(map[string]any)
		wc.deploymentName, wc.deploymentUpdated = d.name, d.updated.UTC().Format("2006-01-02T15:04:05.000000+00:00")
	}
	if f := s.flowByID(r.flowID); f != nil {
		wc.flowName = f.name
	}
	job, err := resolveJob(tmpl, depVars, r.jobVariables, wc)
	if err != nil {
		s.crashSubmission(r, err, now)
		s.mu.Unlock()
		return
	}
	if r.labels == nil {
		r.labels = map[string]any{}
	}
	r.labels["prefect.worker.name"], r.labels["prefect.worker.type"] = w.spec.Name, "ecs"
	r.labels["prefect.work-pool.name"], r.labels["prefect.work-pool.id"] = p.name, p.id
	s.propose(r, "PENDING", "Submitting", "", false, now)
	sub := &submission{run: *r, pool: p.name, job: job, region: s.world.Region}
	s.mu.Unlock()

	err = s.launch(awsClient{s, w}, w, sub)

	s.mu.Lock()
	defer s.mu.Unlock()
	now = s.clock.Now()
	r = s.runs[id]
	if r == nil {
		return
	}
	for _, l := range sub.logs {
		s.addLog(id, l.logger, l.level, now, l.msg)
	}
	if err != nil {
		s.crashSubmission(r, err, now)
		return
	}
	r.infrastructurePID, r.updated, r.claimedBy = sub.pid, now, w.spec.Name
	s.addLog(id, workerLogger, 20, now, fmt.Sprintf("Flow run '%s' submitted to infrastructure", r.name))
}

// crashSubmission is the end of a failed submission (base:1640-1653).
// Callers hold s.mu.
func (s *Server) crashSubmission(r *flowRun, err error, now time.Time) {
	s.addLog(r.id, workerLogger, 40, now, fmt.Sprintf("Failed to submit flow run '%s' to infrastructure.\n%s", r.name, err.Error()))
	s.propose(r, "CRASHED", "", "Failed to submit flow run to infrastructure: "+err.Error(), false, now)
}

// launch is _prepare_and_create_task (ew:776-866), without any lock held.
func (s *Server) launch(a awsClient, w *simWorker, sub *submission) error {
	ctx := context.Background()
	ecsc, err := client(a, "ecs", ecs.NewFromConfig)
	if err != nil {
		return err
	}
	j, r := sub.job, &sub.run
	tdARN := asString(j.taskRunRequst["taskDefinition"])
	var td map[string]any
	newTD := false
	if tdARN == "" {
		td, err = j.taskDefinitionFor(sub.region, sub.pool, r)
		if err != nil {
			return err
		}
		tdARN, newTD, err = s.taskDefinitionARN(ctx, ecsc, w, sub, td)
		if err != nil {
			return err
		}
	} else {
		msg := "Retrieving ECS task definition %s..."
		if !strings.HasPrefix(tdARN, "arn:aws:ecs:") {
			msg = "Retrieving most recent active revision from ECS task family %s..."
		}
		sub.info(msg, pyRepr(tdARN))
		out, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tdARN)})
		if err != nil {
			return botoError(err)
		}
		td = botoDict(out.TaskDefinition)
		if len(j.taskDefinition) > 0 {
			sub.warn("Skipping task definition construction since a task definition ARN is provided.")
		}
	}
	if err := j.validateTaskDefinition(td); err != nil {
		return err
	}
	w.tdCache[firstOf(r.deploymentID, r.flowID)] = tdARN
	sub.info("Using ECS task definition %s...", pyRepr(tdARN))
	req := j.runRequestFor(td, tdARN, newTD)
	if td["networkMode"] == "awsvpc" {
		var nc map[string]any
		switch {
		case len(asMap(req["networkConfiguration"])) == 0 && len(j.networkConfiguration) == 0:
			nc, err = s.loadNetwork(ctx, a, j.vpcID, nil)
		case len(j.networkConfiguration) > 0 && j.vpcID != "":
			nc, err = s.loadNetwork(ctx, a, j.vpcID, j.networkConfiguration)
		}
		if err != nil {
			return err
		}
		if nc != nil {
			req["networkConfiguration"] = nc
		}
	}
	sub.info("Creating ECS task run...")
	var in ecs.RunTaskInput
	if err := decodeBoto(req, &in); err != nil {
		return err
	}
	var out *ecs.RunTaskOutput
	for attempt := 0; attempt < 3; attempt++ { // create_task_run_max_attempts (§B.1)
		out, err = ecsc.RunTask(ctx, &in)
		if err == nil && len(out.Failures) > 0 {
			err = pyErr("RuntimeError", "Failed to run ECS task: %s", aws.ToString(out.Failures[0].Reason))
		} else if err == nil && len(out.Tasks) == 0 {
			err = pyErr("RuntimeError", "Failed to run ECS task: no tasks or failures were returned.")
		}
		if err == nil {
			break
		}
		err = botoError(err)
	}
	if err != nil {
		return reportRunTaskFailure(j, req, err)
	}
	task := out.Tasks[0]
	sub.info("Created ECS task %s", pyRepr(aws.ToString(task.TaskArn)))
	sub.taskARN = aws.ToString(task.TaskArn)
	sub.pid = firstOf(j.cluster, aws.ToString(task.ClusterArn)) + "::" + sub.taskARN
	return nil
}

// taskDefinitionARN is _get_or_register_task_definition (ew:938-1024).
func (s *Server) taskDefinitionARN(ctx context.Context, ecsc *ecs.Client, w *simWorker, sub *submission, td map[string]any) (string, bool, error) {
	r := &sub.run
	cached := w.tdCache[firstOf(r.deploymentID, r.flowID)]
	if cached != "" {
		sub.info("Retrieving ECS task definition %s...", pyRepr(cached))
		out, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(cached)})
		if err != nil {
			sub.warn("Failed to retrieve task definition for cached arn %s. Error: %s", pyRepr(cached), botoError(err).(*submitError).msg)
			cached = ""
		} else if out.TaskDefinition.Status != ecstypes.TaskDefinitionStatusActive || !taskDefinitionsEqual(td, botoDict(out.TaskDefinition)) {
			cached = ""
		}
	}
	if cached == "" && sub.job.matchLatest {
		family := firstOf(asString(td["family"]), "prefect")
		sub.info("Retrieving most recent active revision from ECS task family %s...", pyRepr(family))
		out, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)})
		if err != nil {
			sub.warn("Failed to retrieve task definition for family %s. Error: %s", pyRepr(family), botoError(err).(*submitError).msg)
		} else if taskDefinitionsEqual(td, botoDict(out.TaskDefinition)) {
			cached = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
		}
	}
	if cached != "" {
		return cached, false, nil
	}
	sub.info("Registering ECS task definition...")
	var in ecs.RegisterTaskDefinitionInput
	if err := decodeBoto(td, &in); err != nil {
		return "", false, err
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ { // register_task_definition_max_attempts (§B.1)
		var out *ecs.RegisterTaskDefinitionOutput
		if out, err = ecsc.RegisterTaskDefinition(ctx, &in); err == nil {
			return aws.ToString(out.TaskDefinition.TaskDefinitionArn), true, nil
		}
	}
	return "", false, botoError(err)
}

// loadNetwork is _load_network_configuration (custom nil) and
// _custom_network_configuration (ew:1295-1383).
func (s *Server) loadNetwork(ctx context.Context, a awsClient, vpcID string, custom map[string]any) (map[string]any, error) {
	ec2c, err := client(a, "ec2", ec2.NewFromConfig)
	if err != nil {
		return nil, err
	}
	vpcMessage := "VPC with ID " + vpcID
	in := &ec2.DescribeVpcsInput{VpcIds: []string{vpcID}}
	if vpcID == "" {
		vpcMessage = "the default VPC"
		in = &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("isDefault"), Values: []string{"true"}}}}
	}
	vpcs, err := ec2c.DescribeVpcs(ctx, in)
	if err != nil {
		return nil, botoError(err)
	}
	if len(vpcs.Vpcs) == 0 {
		help := "Check that the VPC exists in the current region."
		if vpcID == "" {
			help = "Pass an explicit `vpc_id` or configure a default VPC."
		}
		if custom != nil {
			help = "Pass an explicit `vpc_id`."
		}
		return nil, pyErr("ValueError", "Failed to find %s. Network configuration cannot be inferred. %s", vpcMessage, help)
	}
	id := aws.ToString(vpcs.Vpcs[0].VpcId)
	subnets, err := ec2c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{id}}}})
	if err != nil {
		return nil, botoError(err)
	}
	if len(subnets.Subnets) == 0 {
		return nil, pyErr("ValueError", "Failed to find subnets for %s. Network configuration cannot be inferred.", vpcMessage)
	}
	var ids []any
	in2 := map[string]bool{}
	for _, sn := range subnets.Subnets {
		ids = append(ids, aws.ToString(sn.SubnetId))
		in2[aws.ToString(sn.SubnetId)] = true
	}
	if custom == nil {
		return map[string]any{"awsvpcConfiguration": map[string]any{"subnets": ids, "assignPublicIp": "ENABLED", "securityGroups": []any{}}}, nil
	}
	for _, sn := range asList(custom["subnets"]) {
		if !in2[fmt.Sprint(sn)] {
			return nil, pyErr("ValueError", "Subnets %s not found within %s.Please check that VPC is associated with supplied subnets.", pyList(asList(custom["subnets"])), vpcMessage)
		}
	}
	return map[string]any{"awsvpcConfiguration": custom}, nil
}

func pyList(l []any) string {
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = pyRepr(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// reportRunTaskFailure is _report_task_run_creation_failure (ew:868-937).
func reportRunTaskFailure(j *ecsJob, req map[string]any, err error) error {
	msg := err.Error()
	lower := strings.ToLower(msg)
	cluster := asString(req["cluster"])
	if _, has := req["cluster"]; !has {
		cluster = "default"
	}
	switch {
	case strings.Contains(msg, "ClusterNotFoundException"):
		return pyErr("RuntimeError", "Failed to run ECS task, cluster %s not found. Confirm that the cluster is configured in your region.", pyRepr(cluster))
	case strings.Contains(msg, "No Container Instances") && req["launchType"] == "EC2":
		return pyErr("RuntimeError", "Failed to run ECS task, cluster %s does not appear to have any container instances associated with it. Confirm that you have EC2 container instances available.", pyRepr(cluster))
	case strings.Contains(msg, "TaskDefinition is inactive"):
		return pyErr("RuntimeError", "Failed to run ECS task, the task definition is inactive. Re-register the task definition or remove the `task_definition_arn` from your work pool configuration to allow Prefect to register a new task definition automatically.")
	case strings.Contains(lower, "no capacity") || strings.Contains(lower, "capacity provider"):
		return pyErr("RuntimeError", "Failed to run ECS task due to a capacity provider error. Verify that your Fargate or EC2 capacity providers are correctly configured for the cluster and that the requested capacity is available.")
	case strings.Contains(msg, "InvalidParameterException") && (strings.Contains(lower, "subnet") || strings.Contains(lower, "security group") || strings.Contains(lower, "network")):
		return pyErr("RuntimeError", "Failed to run ECS task due to a network configuration error. Verify the subnets and security groups in your work pool's network configuration are valid and belong to the expected VPC.")
	}
	return err
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]+)"`)

// decodeBoto turns a request dict into the SDK's input, refusing unknown
// keys as botocore's ParamValidationError does.
func decodeBoto(m map[string]any, out any) error {
	b, _ := json.Marshal(m)
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		if mm := unknownFieldRe.FindStringSubmatch(err.Error()); mm != nil {
			return pyErr("ParamValidationError", "Parameter validation failed:\nUnknown parameter in input: %q", mm[1])
		}
		return pyErr("ParamValidationError", "Parameter validation failed:\n%s", err.Error())
	}
	return nil
}

// botoDict is an SDK output as boto3's dict (camelCase keys).
func botoDict(v any) map[string]any {
	b, _ := json.Marshal(v)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	_ = d.Decode(&out)
	m, _ := camelKeys(out).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func camelKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if k != "" && k[0] >= 'A' && k[0] <= 'Z' {
				k = strings.ToLower(k[:1]) + k[1:]
			}
			out[k] = camelKeys(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = camelKeys(x[i])
		}
	}
	return v
}

// postRegistrationFields are what ECS adds on registration
// (ECS_POST_REGISTRATION_FIELDS, ew:110-119).
var postRegistrationFields = []string{"compatibilities", "taskDefinitionArn", "revision", "status", "requiresAttributes", "registeredAt", "registeredBy", "deregisteredAt"}

// taskDefinitionsEqual is _task_definitions_equal (ew:1598-1683).
func taskDefinitionsEqual(a, b map[string]any) bool {
	norm := func(td map[string]any) map[string]any {
		td = deepCopy(td).(map[string]any)
		if _, ok := td["networkMode"]; !ok {
			td["networkMode"] = "bridge"
		}
		for _, c := range asList(td["containerDefinitions"]) {
			cm := asMap(c)
			if _, ok := cm["essential"]; !ok {
				cm["essential"] = true
			}
			for _, k := range []string{"environment", "secrets", "environmentFiles"} {
				l := asList(cm[k])
				key := "name"
				if k == "environmentFiles" {
					key = "value"
				}
				sort.SliceStable(l, func(i, j int) bool { return asString(asMap(l[i])[key]) < asString(asMap(l[j])[key]) })
			}
		}
		dropEmpty(td)
		for _, f := range postRegistrationFields {
			delete(td, f)
		}
		return normNumbers(td).(map[string]any)
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// normNumbers makes numbers comparable whatever their JSON spelling.
func normNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normNumbers(e)
		}
	case []any:
		for i := range x {
			x[i] = normNumbers(x[i])
		}
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return v
}

// cancelPending is _cancel_run for the CANCELLING runs of the worker's pool
// that never started (base:1844-1925), with PREFECT_WORKER_ENABLE_CANCELLATION.
func (s *Server) cancelPending(w *simWorker) {
	switch strings.ToLower(w.env["PREFECT_WORKER_ENABLE_CANCELLATION"]) {
	case "true", "1", "yes", "on", "t", "y":
	default:
		return
	}
	s.mu.Lock()
	var ids []string
	for _, r := range s.runs {
		if r.pool == w.spec.Pool && r.state.typ == "CANCELLING" && r.startTime.IsZero() {
			ids = append(ids, r.id)
		}
	}
	sort.Strings(ids)
	s.mu.Unlock()
	for _, id := range ids {
		s.mu.Lock()
		r := s.runs[id]
		if r == nil || r.state.typ != "CANCELLING" {
			s.mu.Unlock()
			continue
		}
		now := s.clock.Now()
		pid := r.infrastructurePID
		if pid == "" {
			s.setRunState(r, "CANCELLED", "", "Flow run cancelled by worker (no infrastructure found).", now)
			s.mu.Unlock()
			continue
		}
		if r.deploymentID != "" && s.deployments[r.deploymentID] == nil {
			s.addLog(id, workerLogger, 30, now, "Cannot kill infrastructure: deployment not found. Infrastructure may still be running.")
			s.setRunState(r, "CANCELLED", "", "Flow run cancelled (deployment not found, infrastructure may still be running).", now)
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		cluster, task, _ := strings.Cut(pid, "::")
		err := func() error {
			ecsc, err := client(awsClient{s, w}, "ecs", ecs.NewFromConfig)
			if err != nil {
				return err
			}
			_, err = ecsc.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(task), Reason: aws.String("Stopped by Prefect worker")})
			if err != nil && strings.Contains(strings.ToLower(err.Error()), "task was not found") {
				return nil // InfrastructureNotFound: nothing to kill
			}
			if err != nil {
				return botoError(err)
			}
			return nil
		}()
		s.mu.Lock()
		now = s.clock.Now()
		if r = s.runs[id]; r != nil {
			if err != nil {
				s.addLog(id, workerLogger, 40, now, "Error killing infrastructure\n"+err.Error())
			} else {
				s.setRunState(r, "CANCELLED", "", "Flow run cancelled by worker while pending.", now)
				s.addLog(id, workerLogger, 20, now, fmt.Sprintf("Cancelled pending flow run '%s'", id))
			}
		}
		s.mu.Unlock()
	}
}

// The ECS observer (obs).
const (
	observerQueueEnv     = "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME"
	observerDefaultQueue = "prefect-ecs-tasks-events"
	observerLogger       = "prefect.flow_runs.observer"
)

// observe runs the worker's observer for one tick: it reads what the queue
// has now.
func (s *Server) observe(w *simWorker) {
	o := &w.obs
	now := s.clock.Now()
	if o.disabled || o.gaveUp || now.Before(o.restartAt) || now.Before(o.nextPoll) {
		return
	}
	a := awsClient{s, w}
	sqsc, err := client(a, "sqs", sqs.NewFromConfig)
	if err != nil {
		s.mu.Lock()
		s.observerCrash(w, err, now)
		s.mu.Unlock()
		return
	}
	ctx := context.Background()
	if o.queueURL == "" {
		name := firstOf(w.env[observerQueueEnv], observerDefaultQueue)
		out, err := sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			s.mu.Lock()
			var missing *sqstypes.QueueDoesNotExist
			if errors.As(err, &missing) || strings.Contains(err.Error(), "NonExistentQueue") {
				o.disabled = true
				s.workerLogf(w, "WARNING SQS queue '%s' does not exist in region 'default'. This worker will continue to submit ECS tasks, but event replication and crash detection will not work.", name)
			} else {
				s.observerCrash(w, botoError(err), now)
			}
			s.mu.Unlock()
			return
		}
		o.queueURL = aws.ToString(out.QueueUrl)
	}
	for i := 0; i < 100; i++ {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(o.queueURL), MaxNumberOfMessages: 1,
			WaitTimeSeconds: 20, VisibilityTimeout: 300})
		if err != nil {
			s.mu.Lock()
			s.receiveFailed(w, botoError(err), now)
			s.mu.Unlock()
			return
		}
		o.recent = append(o.recent, true)
		o.backoffs = 0
		if len(out.Messages) == 0 {
			return
		}
		m := out.Messages[0]
		if s.handleEvent(a, w, aws.ToString(m.Body)) {
			_, _ = sqsc.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(o.queueURL), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// receiveFailed is _SqsBackoffState.record_failure (obs:206-249). Callers
// hold s.mu.
func (s *Server) receiveFailed(w *simWorker, err error, now time.Time) {
	o := &w.obs
	o.recent = append(o.recent, false)
	if len(o.recent) > 3 {
		o.recent = o.recent[len(o.recent)-3:]
	}
	if len(o.recent) < 3 || o.recent[0] || o.recent[1] || o.recent[2] {
		return
	}
	o.backoffs++
	if o.backoffs > 5 {
		s.observerCrash(w, pyErr("RuntimeError", "SQS polling failed after 5 backoff attempts"), now)
		return
	}
	o.recent = nil
	o.nextPoll = now.Add(time.Duration(math.Pow(2, float64(o.backoffs))) * time.Second)
}

// observerCrash is _observer_task_done for a crash (obs:1041-1070).
// Callers hold s.mu.
func (s *Server) observerCrash(w *simWorker, err error, now time.Time) {
	o := &w.obs
	o.restarts++
	o.queueURL, o.recent, o.backoffs, o.nextPoll = "", nil, 0, time.Time{}
	s.workerLogf(w, "ERROR ECS observer task crashed: %s", err.Error())
	if o.restarts > 5 {
		o.gaveUp = true
		s.workerLogf(w, "ERROR ECS observer has crashed %d times, giving up on automatic restarts", o.restarts)
		return
	}
	o.restartAt = now.Add(time.Duration(30*(1<<(o.restarts-1))) * time.Second)
}

// ecsEvent is the part of an EventBridge ECS event the observer reads.
type ecsEvent struct {
	ID         string `json:"id"`
	DetailType string `json:"detail-type"`
	Time       string `json:"time"`
	Detail     struct {
		TaskARN           string `json:"taskArn"`
		ClusterARN        string `json:"clusterArn"`
		TaskDefinitionARN string `json:"taskDefinitionArn"`
		LastStatus        string `json:"lastStatus"`
		StopCode          string `json:"stopCode"`
		StoppedReason     string `json:"stoppedReason"`
		Containers        []struct {
			Name         string `json:"name"`
			ContainerARN string `json:"containerArn"`
			ExitCode     *int   `json:"exitCode"`
		} `json:"containers"`
	} `json:"detail"`
}

var observedDetailTypes = map[string]bool{"ECS Task State Change": true, "ECS Container Instance State Change": true, "ECS Deployment State Change": true}

// handleEvent is EcsObserver.run for one message (obs:370-447): whether
// to delete it.
func (s *Server) handleEvent(a awsClient, w *simWorker, body string) bool {
	if body == "" {
		return true
	}
	var ev ecsEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return false // json.loads raises: the observer crashes on it
	}
	var tags map[string]string
	if ev.Detail.TaskARN != "" && ev.Detail.ClusterARN != "" {
		tags = s.readTags(a, w, ev.Detail.ClusterARN, ev.Detail.TaskARN)
	}
	if ev.DetailType == "" || !observedDetailTypes[ev.DetailType] || ev.DetailType != "ECS Task State Change" {
		return true
	}
	runID := tags["prefect.io/flow-run-id"]
	deregister := tags["prefect.io/degregister-task-definition"] == "true" && ev.Detail.LastStatus == "STOPPED"
	if runID == "" && !deregister {
		return true // no handler matches
	}
	ok := true
	if runID != "" {
		ok = s.replicateEvent(w, ev, runID) && ok
		if ev.Detail.LastStatus == "STOPPED" {
			ok = s.markCrashed(a, w, ev, runID) && ok
		}
	}
	if deregister && ev.Detail.TaskDefinitionARN != "" {
		if ecsc, err := client(a, "ecs", ecs.NewFromConfig); err == nil {
			_, _ = ecsc.DeregisterTaskDefinition(context.Background(), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(ev.Detail.TaskDefinitionARN)})
		}
	}
	return ok
}

// readTags is EcsTaskTagsReader.read_tags (obs:141-175): an error reads as
// no tags; answers are cached (LRU of 100).
func (s *Server) readTags(a awsClient, w *simWorker, cluster, task string) map[string]string {
	o := &w.obs
	if t, ok := o.tags[task]; ok {
		return t
	}
	ecsc, err := client(a, "ecs", ecs.NewFromConfig)
	if err != nil {
		return map[string]string{}
	}
	out, err := ecsc.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task},
		Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
	if err != nil || len(out.Tasks) == 0 {
		return map[string]string{}
	}
	tags := map[string]string{}
	for _, t := range out.Tasks[0].Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if o.tags == nil {
		o.tags = map[string]map[string]string{}
	}
	o.tags[task] = tags
	o.tagOrder = append(o.tagOrder, task)
	if len(o.tagOrder) > 100 {
		delete(o.tags, o.tagOrder[0])
		o.tagOrder = o.tagOrder[1:]
	}
	return tags
}

// replicateEvent is replicate_ecs_event's state part (obs:786-817): a
// PROVISIONING or PENDING task makes its run PENDING "InfrastructurePending"
// unless it is running, final or paused. False: the Prefect call failed.
func (s *Server) replicateEvent(w *simWorker, ev ecsEvent, runID string) bool {
	if ev.Detail.LastStatus != "PENDING" && ev.Detail.LastStatus != "PROVISIONING" {
		return true
	}
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sync(tasks, now)
	s.advanceRuns(now)
	if !w.prefectOK || s.outageAt(now) {
		s.workerLogf(w, "ERROR Failed to propose InfrastructurePending for flow run %s", runID)
		return true // logged and swallowed by the handler
	}
	r := s.runs[runID]
	if r == nil || r.state.typ == "RUNNING" || terminal[r.state.typ] || r.state.typ == "PAUSED" {
		return true
	}
	s.propose(r, "PENDING", "InfrastructurePending", "ECS task is "+strings.ToLower(ev.Detail.LastStatus)+".", false, now)
	return true
}

// markCrashed is mark_runs_as_crashed (obs:820-995). False: the Prefect
// call failed and the message stays for redelivery.
func (s *Server) markCrashed(a awsClient, w *simWorker, ev ecsEvent, runID string) bool {
	tasks := s.tasks.Tasks()
	s.mu.Lock()
	now := s.clock.Now()
	s.sync(tasks, now)
	s.advanceRuns(now)
	if !w.prefectOK || s.outageAt(now) {
		s.workerLogf(w, "ERROR Failed to process ECS observer message (flow run %s): Prefect API unreachable", runID)
		s.mu.Unlock()
		return false
	}
	r := s.runs[runID]
	if r == nil || terminal[r.state.typ] || r.state.typ == "SCHEDULED" || r.state.typ == "PAUSED" {
		s.mu.Unlock()
		return true
	}
	wasRunning := r.state.typ == "RUNNING"
	containers := ev.Detail.Containers
	check := containers
	orchestration := ""
	for _, c := range containers {
		if c.Name == "prefect" {
			check = append(containers[:0:0], c)
			orchestration = c.Name
			break
		}
	}
	var bad []string
	for _, c := range check {
		if c.ExitCode == nil || *c.ExitCode != 0 {
			bad = append(bad, firstOf(c.Name, c.ContainerARN))
		}
	}
	diagnose := len(bad) > 0 || len(containers) == 0
	failedToStart := len(containers) == 0 && ev.Detail.StopCode == "TaskFailedToStart"
	rejected := false
	if len(bad) > 0 || failedToStart {
		msg := ""
		if failedToStart {
			msg = "ECS task failed to start: " + firstOf(ev.Detail.StoppedReason, "unknown reason") + ". The capacity provider could not place the task."
		} else {
			quoted := make([]any, len(bad))
			for i, b := range bad {
				quoted[i] = b
			}
			msg = "The following containers stopped with a non-zero exit code: " + pyList(quoted)
		}
		res := s.propose(r, "CRASHED", "", msg, false, now)
		rejected = res.status == "ABORT"
	}
	s.mu.Unlock()
	if !diagnose || wasRunning || rejected {
		return true
	}
	// _forward_cloudwatch_logs (obs:571-700).
	name := orchestration
	switch {
	case name != "":
	case len(containers) == 0:
		name = "" // from the task definition
	case len(containers) == 1:
		name = containers[0].Name
	default:
		return true
	}
	lines := s.cloudWatchTail(a, ev, name)
	if len(lines) == 0 {
		return true
	}
	s.mu.Lock()
	now = s.clock.Now()
	for _, l := range lines {
		s.addLog(runID, observerLogger, 20, now, l)
	}
	s.mu.Unlock()
	return true
}

// cloudWatchTail reads the last 500 lines of the orchestration container's
// awslogs stream, with the worker's role (obs:571-714).
func (s *Server) cloudWatchTail(a awsClient, ev ecsEvent, container string) []string {
	if ev.Detail.TaskDefinitionARN == "" {
		return nil
	}
	ecsc, err := client(a, "ecs", ecs.NewFromConfig)
	if err != nil {
		return nil
	}
	out, err := ecsc.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ev.Detail.TaskDefinitionARN)})
	if err != nil {
		return nil
	}
	var def *ecstypes.ContainerDefinition
	defs := out.TaskDefinition.ContainerDefinitions
	for i := range defs {
		if (container != "" && aws.ToString(defs[i].Name) == container) || (container == "" && aws.ToString(defs[i].Name) == "prefect") {
			def = &defs[i]
		}
	}
	if def == nil && container == "" && len(defs) == 1 {
		def = &defs[0]
	}
	if def == nil || def.LogConfiguration == nil || def.LogConfiguration.LogDriver != ecstypes.LogDriverAwslogs {
		return nil
	}
	opts := def.LogConfiguration.Options
	group, prefix := opts["awslogs-group"], opts["awslogs-stream-prefix"]
	if group == "" || prefix == "" {
		return nil
	}
	logsc, err := client(a, "logs", cloudwatchlogs.NewFromConfig)
	if err != nil {
		return nil
	}
	task := ev.Detail.TaskARN
	stream := prefix + "/" + aws.ToString(def.Name) + "/" + task[strings.LastIndex(task, "/")+1:]
	got, err := logsc.GetLogEvents(context.Background(), &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
		LogStreamName: aws.String(stream), Limit: aws.Int32(500), StartFromHead: aws.Bool(false)})
	if err != nil {
		return nil
	}
	var lines []string
	for _, e := range got.Events {
		lines = append(lines, aws.ToString(e.Message))
	}
	return lines
}
