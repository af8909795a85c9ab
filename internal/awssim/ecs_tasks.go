package awssim

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

type ecsTask struct {
	ID, ARN, ClusterName, ServiceARN, ServiceName string
	Dep                                           *ecsDep
	svcGen                                        int
	TDARN                                         string
	Def                                           ecstypes.TaskDefinition
	StartedBy, Group                              string
	LastStatus, DesiredStatus                     string
	Health                                        ecstypes.HealthStatus
	Created, PullStarted, PullStopped, Started    time.Time
	Connectivity, Stopping, ExecStopped, Stopped  time.Time
	StopCode                                      ecstypes.TaskStopCode
	StoppedReason, ContainerReason                string
	ExitCode                                      *int32
	ENIID, SubnetID, AZ, PrivateIP, Hostname      string
	AttachmentID                                  string
	PublicIP, Internet                            bool
	Image                                         string
	Behavior                                      ImageBehavior
	Secrets                                       map[string]string
	Tags                                          []ecstypes.Tag
	Version                                       int64
	// queue holds the task's future transitions in time order.
	queue []timedAction
	// sdInstances are the Cloud Map services (ids) it is registered in.
	sdInstances []string
	// emitted is the Version of the last state change event sent for it.
	emitted int64
	// Overrides are RunTask's (nil for service tasks).
	Overrides *ecstypes.TaskOverride
	// proc is the essential container's program while it runs (runtime.go).
	proc ContainerProcess
	// Health-check state: consecutive counted failures, and whether a check
	// has passed yet.
	hcFails  int
	hcPassed bool
	// shipped is how many of the program's output lines awslogs shipped.
	shipped int
}

func (t *ecsTask) schedule(at time.Time, do func(at time.Time)) {
	i := sort.Search(len(t.queue), func(i int) bool { return t.queue[i].at.After(at) })
	t.queue = append(t.queue, timedAction{})
	copy(t.queue[i+1:], t.queue[i:])
	t.queue[i] = timedAction{at: at, do: do}
}

// essential is the container whose image, command and environment the task
// is about (deploybot's task definitions have one).
func (t *ecsTask) essential() ecstypes.ContainerDefinition {
	for _, c := range t.Def.ContainerDefinitions {
		if aws.ToBool(c.Essential) {
			return c
		}
	}
	return t.Def.ContainerDefinitions[0]
}

// healthy: RUNNING, and HEALTHY when the container has a health check.
func (t *ecsTask) healthy() bool {
	if t.LastStatus != "RUNNING" || t.DesiredStatus != "RUNNING" {
		return false
	}
	if t.essential().HealthCheck == nil {
		return true
	}
	return t.Health == ecstypes.HealthStatusHealthy
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return aws.Time(t)
}

func (w *World) taskView(t *ecsTask, withTags bool) ecstypes.Task {
	c := t.essential()
	cont := ecstypes.Container{
		ContainerArn: aws.String(w.ecsARN("container/" + t.ClusterName + "/" + t.ID + "/" + uuidFrom("container#"+t.ID))),
		TaskArn:      aws.String(t.ARN), Name: c.Name, Image: c.Image, LastStatus: aws.String(t.LastStatus), HealthStatus: t.Health,
		ExitCode: t.ExitCode, Cpu: aws.String("0"),
		NetworkInterfaces: []ecstypes.NetworkInterface{{AttachmentId: aws.String(t.AttachmentID), PrivateIpv4Address: aws.String(t.PrivateIP)}},
	}
	switch t.LastStatus {
	case "PROVISIONING", "PENDING":
		cont.LastStatus = aws.String("PENDING")
	case "DEACTIVATING", "STOPPING":
		cont.LastStatus = aws.String("RUNNING")
	case "DEPROVISIONING":
		cont.LastStatus = aws.String("STOPPED")
	}
	if !t.Started.IsZero() {
		cont.RuntimeId = aws.String(t.ID + "-" + token("runtime#"+t.ID, 10, "0123456789"))
	}
	if t.ContainerReason != "" {
		cont.Reason = aws.String(t.ContainerReason)
	}
	if c.HealthCheck == nil {
		cont.HealthStatus = ecstypes.HealthStatusUnknown
	}
	attStatus := "ATTACHED"
	switch t.LastStatus {
	case "PROVISIONING":
		attStatus = "PRECREATED"
	case "DEPROVISIONING":
		attStatus = "DETACHING"
	case "STOPPED":
		attStatus = "DELETED"
	}
	out := ecstypes.Task{
		TaskArn: aws.String(t.ARN), ClusterArn: aws.String(w.ecsARN("cluster/" + t.ClusterName)), TaskDefinitionArn: aws.String(t.TDARN),
		LastStatus: aws.String(t.LastStatus), DesiredStatus: aws.String(t.DesiredStatus), HealthStatus: t.Health,
		LaunchType: ecstypes.LaunchTypeFargate, PlatformVersion: aws.String("1.4.0"), PlatformFamily: aws.String("Linux"),
		Cpu: t.Def.Cpu, Memory: t.Def.Memory, Group: aws.String(t.Group), StartedBy: aws.String(t.StartedBy),
		AvailabilityZone: aws.String(t.AZ), Version: t.Version, CreatedAt: aws.Time(t.Created),
		PullStartedAt: timePtr(t.PullStarted), PullStoppedAt: timePtr(t.PullStopped), StartedAt: timePtr(t.Started),
		ConnectivityAt: timePtr(t.Connectivity), StoppingAt: timePtr(t.Stopping), ExecutionStoppedAt: timePtr(t.ExecStopped),
		StoppedAt: timePtr(t.Stopped), StopCode: t.StopCode, Containers: []ecstypes.Container{cont},
		Attachments: []ecstypes.Attachment{{Id: aws.String(t.AttachmentID), Type: aws.String("ElasticNetworkInterface"), Status: aws.String(attStatus),
			Details: []ecstypes.KeyValuePair{
				{Name: aws.String("subnetId"), Value: aws.String(t.SubnetID)},
				{Name: aws.String("networkInterfaceId"), Value: aws.String(t.ENIID)},
				{Name: aws.String("privateDnsName"), Value: aws.String(t.Hostname)},
				{Name: aws.String("privateIPv4Address"), Value: aws.String(t.PrivateIP)},
			}}},
		Attributes: []ecstypes.Attribute{{Name: aws.String("ecs.cpu-architecture"), Value: aws.String("x86_64")}},
		Overrides:  &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: c.Name}}},
	}
	if t.Overrides != nil {
		out.Overrides = clone(t.Overrides)
	}
	if !t.Connectivity.IsZero() {
		out.Connectivity = ecstypes.ConnectivityConnected
	}
	if t.StoppedReason != "" {
		out.StoppedReason = aws.String(t.StoppedReason)
	}
	if withTags {
		out.Tags = clone(t.Tags)
		if out.Tags == nil {
			out.Tags = []ecstypes.Tag{}
		}
	}
	return out
}

// TaskView is a simulated task as the Prefect simulator sees it.
type TaskView struct {
	ARN, Cluster, Service, TaskDefinitionARN string
	LastStatus                               string
	Hostname                                 string
	Image                                    string
	Env                                      map[string]string // container environment
	Secrets                                  map[string]string // secret env resolved to values, only when the task could read them
	Command                                  []string
	StartedAt, StoppedAt                     time.Time
	// Internet: the task's network reaches the internet.
	Internet bool
	// HostReach: whether the task's network reaches the host of each URL in
	// its environment (e.g. PREFECT_API_URL's), by host[:port] (reach.go).
	HostReach map[string]bool
	Behavior  ImageBehavior
	// TaskRoleARN is the role the container's AWS SDK gets (the run's
	// override, else the task definition's); ClusterARN its cluster's.
	TaskRoleARN, ClusterARN string
	Tags                    map[string]string
	StopCode, StoppedReason string
}

// Tasks returns every task ECS still shows (STOPPED ones for
// StoppedTaskRetention), in launch order, after advancing the simulation.
func (w *World) Tasks() []TaskView {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	w.advance()
	var out []TaskView
	st := w.ecs()
	for _, arn := range st.taskOrder {
		t := st.Tasks[arn]
		cs := w.containerStart(t)
		v := TaskView{ARN: t.ARN, Cluster: t.ClusterName, Service: t.ServiceName, TaskDefinitionARN: t.TDARN, LastStatus: t.LastStatus,
			Hostname: t.Hostname, Image: t.Image, Env: cs.Env, Command: cs.Command,
			StartedAt: t.Started, StoppedAt: t.Stopped, Internet: t.Internet, Behavior: t.Behavior,
			TaskRoleARN: cs.TaskRoleARN, ClusterARN: cs.ClusterARN, Tags: ecsTags.asMap(t.Tags), StopCode: string(t.StopCode), StoppedReason: t.StoppedReason}
		if t.Secrets != nil {
			v.Secrets = copyTags(t.Secrets)
		}
		v.HostReach = map[string]bool{}
		for _, val := range v.Env {
			if strings.HasPrefix(val, "http://") || strings.HasPrefix(val, "https://") {
				d := URLDestination(val)
				v.HostReach[d.Host], _ = w.Reach(t.SubnetID, t.PublicIP, d)
			}
		}
		out = append(out, v)
	}
	return out
}

func init() {
	Handle(func(ctx context.Context, w *World, in *ecs.ListTasksInput) (*ecs.ListTasksOutput, error) {
		w.advance()
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		svcARN := ""
		if n := aws.ToString(in.ServiceName); n != "" {
			svcARN = w.serviceARN(c.Name, n)
			if _, ok := w.ecs().Services[svcARN]; !ok {
				return nil, serviceNotFound()
			}
		}
		desired := string(in.DesiredStatus)
		if desired == "" {
			desired = "RUNNING"
		}
		var arns []string
		for _, arn := range w.ecs().taskOrder {
			t := w.ecs().Tasks[arn]
			if t.ClusterName != c.Name || t.DesiredStatus != desired {
				continue
			}
			if svcARN != "" && t.ServiceARN != svcARN {
				continue
			}
			if fam := aws.ToString(in.Family); fam != "" && aws.ToString(t.Def.Family) != fam {
				continue
			}
			if sb := aws.ToString(in.StartedBy); sb != "" && t.StartedBy != sb {
				continue
			}
			arns = append(arns, arn)
		}
		page, next, err := paginate(arns, in.NextToken, in.MaxResults, 100)
		return &ecs.ListTasksOutput{TaskArns: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *ecs.DescribeTasksInput) (*ecs.DescribeTasksOutput, error) {
		w.advance()
		c, err := w.activeCluster(in.Cluster)
		if err != nil {
			return nil, err
		}
		if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
			return nil, ecsInvalid("Tasks cannot be empty.")
		}
		out := &ecs.DescribeTasksOutput{Tasks: []ecstypes.Task{}, Failures: []ecstypes.Failure{}}
		for _, ref := range in.Tasks {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = w.ecsARN("task/" + c.Name + "/" + ref)
			}
			t, ok := w.ecs().Tasks[arn]
			if !ok || t.ClusterName != c.Name {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
				continue
			}
			out.Tasks = append(out.Tasks, w.taskView(t, hasInclude(in.Include, "TAGS")))
		}
		return out, nil
	})
}
