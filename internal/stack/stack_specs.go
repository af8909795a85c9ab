package stack

import (
	"encoding/json"
	"fmt"

	"github.com/deploybot/deploybot/internal/resource"
)

// The specs below are the desired state of the compute kinds; the kinds in
// internal/resources turn them into AWS calls and normalised Attrs. Fields
// that name another resource's output are Refs, resolved against the
// dependencies' outputs when the engine asks for Desired attrs.

// ClusterSpec is the ECS cluster.
type ClusterSpec struct {
	Name              string
	ContainerInsights bool
}

// LogGroupSpec is the worker's CloudWatch log group.
type LogGroupSpec struct {
	Name          string
	RetentionDays int
}

// RoleSpec is an IAM role with its trust policy, managed policies and inline
// policies (one per name).
type RoleSpec struct {
	Name        string
	Path        string
	Description string
	Trust       PolicyDocument
	// ManagedPolicyARNs are attached; nothing else may be attached.
	ManagedPolicyARNs []string
	Inline            map[string]PolicyDocument
}

// PolicyDocument is an IAM policy whose resources may be other resources'
// outputs (the execution role's statement names the secret's ARN).
type PolicyDocument struct {
	Statements []PolicyStatement
}

// PolicyStatement is one IAM statement.
type PolicyStatement struct {
	Sid       string
	Effect    string
	Principal map[string][]string // e.g. {"Service": ["ecs-tasks.amazonaws.com"]}
	Actions   []string
	Resources []Ref
	// Condition is operator → key → values.
	Condition map[string]map[string][]string
}

// JSON renders the document with its refs resolved (plan.Unknown where a
// resource does not exist yet). The result is valid IAM policy JSON; kinds
// canonicalise it before comparing with what IAM returns.
func (d PolicyDocument) JSON(refs resource.Refs) string {
	type stmt struct {
		Sid       string                         `json:"Sid,omitempty"`
		Effect    string                         `json:"Effect"`
		Principal map[string][]string            `json:"Principal,omitempty"`
		Action    []string                       `json:"Action"`
		Resource  []string                       `json:"Resource,omitempty"`
		Condition map[string]map[string][]string `json:"Condition,omitempty"`
	}
	doc := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{Version: "2012-10-17"}
	for _, s := range d.Statements {
		out := stmt{Sid: s.Sid, Effect: s.Effect, Principal: s.Principal, Action: s.Actions, Condition: s.Condition}
		for _, r := range s.Resources {
			out.Resource = append(out.Resource, r.Resolve(refs))
		}
		doc.Statement = append(doc.Statement, out)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("stack: marshal policy: %v", err)) // only strings and maps: cannot fail
	}
	return string(b)
}

// SecretSpec is the Secrets Manager secret holding the Prefect API key. The
// key itself never leaves this struct: it is not serialised and every
// formatting verb prints it redacted.
type SecretSpec struct {
	Name        string
	Description string
	// Value is the Prefect API key; "" when the caller has none (a destroy,
	// or a plan without the key): the secret's value is then left alone.
	Value string `json:"-"`
	// VersionID is SecretVersionID(environment, Value): the ClientRequestToken
	// of CreateSecret/PutSecretValue, so the AWSCURRENT version id tells
	// whether the stored key is this one without reading it (docs/ARCHITECTURE.md).
	VersionID string
	// ForceDelete deletes without a recovery window (destroy --force).
	ForceDelete bool
	// RecoveryWindowDays applies when not ForceDelete.
	RecoveryWindowDays int
}

// String redacts the key.
func (s SecretSpec) String() string {
	return fmt.Sprintf("SecretSpec{Name:%s VersionID:%s ForceDelete:%t Value:%s}", s.Name, s.VersionID, s.ForceDelete, redacted(s.Value))
}

// GoString redacts the key (%#v).
func (s SecretSpec) GoString() string { return s.String() }

// Format redacts the key for every verb (%v, %+v, %s, %q, %#v).
func (s SecretSpec) Format(f fmt.State, verb rune) { _, _ = fmt.Fprint(f, s.String()) }

// MarshalJSON never includes the key, even through an embedding struct.
func (s SecretSpec) MarshalJSON() ([]byte, error) {
	type public struct {
		Name, Description, VersionID string
		ForceDelete                  bool
		RecoveryWindowDays           int
	}
	return json.Marshal(public{s.Name, s.Description, s.VersionID, s.ForceDelete, s.RecoveryWindowDays})
}

func redacted(v string) string {
	if v == "" {
		return "(none)"
	}
	return "(redacted)"
}

// TaskDefinitionSpec is the worker's task definition (Fargate, awsvpc).
type TaskDefinitionSpec struct {
	Family           string
	CPU              int
	Memory           int
	ExecutionRoleARN Ref
	TaskRoleARN      Ref
	Container        ContainerSpec
	// Cluster and Service name the ECS service whose revision is the live
	// one (Read compares with what runs, not with the newest revision).
	Cluster, Service string
}

// ContainerSpec is the one worker container (docs/ARCHITECTURE.md worker identity
// contract).
type ContainerSpec struct {
	Name        string
	Image       string
	Command     []string
	Environment map[string]string
	// Secrets maps an env var to the ARN it is read from.
	Secrets map[string]Ref
	// LogOptions are the awslogs driver's options (no awslogs-create-group:
	// docs/research/aws-ecs.md §4.4).
	LogOptions  map[string]string
	HealthCheck HealthCheck
}

// HealthCheck is the container health check (docs/research/aws-ecs.md §4.4).
type HealthCheck struct {
	Command                                 []string
	Interval, Timeout, Retries, StartPeriod int32
}

// ServiceSpec is the worker's ECS service.
type ServiceSpec struct {
	Cluster        string
	Name           string
	TaskDefinition Ref
	DesiredCount   int
	// Autoscaling: desiredCount belongs to Application Auto Scaling and is
	// not diffed (docs/research/aws-ecs.md §8: the TF module ignores it too).
	Autoscaling     bool
	Subnets         []Ref
	SecurityGroups  []Ref
	AssignPublicIP  bool
	MaximumPercent  int32
	MinimumHealthy  int32
	ServiceRegistry Ref // Cloud Map service ARN
	TaskFamily      string
	// SecretVersion is the secret's desired AWSCURRENT version id: when the
	// version the service was last deployed with differs, the service needs
	// a new deployment so tasks read the new key.
	SecretVersion string
	// DeploymentTimeout bounds the wait for the ECS deployment.
	DeploymentTimeoutMinutes int
}

// NamespaceSpec is the Cloud Map private DNS namespace.
type NamespaceSpec struct {
	Name        string
	Description string
	VPC         Ref
}

// DiscoveryServiceSpec is the Cloud Map service the ECS service registers in.
type DiscoveryServiceSpec struct {
	Name          string
	Namespace     Ref    // namespace id
	NamespaceName string // to find the namespace when reading
	Description   string
	TTL           int64
}

// ScalableTargetSpec is the Application Auto Scaling target for the service.
type ScalableTargetSpec struct {
	ResourceID  string // "service/<cluster>/<service>"
	MinCapacity int32
	MaxCapacity int32
}

// ScalingPolicySpec is the target-tracking policy on CPU.
type ScalingPolicySpec struct {
	Name             string
	ResourceID       string
	TargetCPUPercent float64
	ScaleInCooldown  int32
	ScaleOutCooldown int32
}
