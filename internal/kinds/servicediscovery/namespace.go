// Package servicediscovery holds the Cloud Map kinds of a stack: the
// private DNS namespace and the service the ECS service registers its tasks
// in.
package servicediscovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// Kind names.
const (
	KindNamespace resource.KindName = "service_discovery_namespace"
	KindService   resource.KindName = "service_discovery_service"
)

// Cloud Map budgets: docs/research/aws-ecs.md §5 (servicediscovery wait.go
// OperationSuccessTimeout 5m; namespace and service deletes retry
// ResourceInUse / DuplicateRequest within it).
const (
	cloudMapBudget       = 5 * time.Minute
	cloudMapPollInterval = 5 * time.Second
)

// TagNamespaceVPC records the namespace's VPC on the namespace: Cloud Map
// does not return it (it lives in the Route 53 hosted zone), and a namespace
// in another VPC must be replaced.
const TagNamespaceVPC = "deploybot:vpc"

type x = resource.Context[awsapi.ServiceDiscoveryAPI]

func connect(a resource.APIs) (awsapi.ServiceDiscoveryAPI, error) { return a.AWS.Discovery, nil }

// NamespaceSpec is the Cloud Map private DNS namespace.
type NamespaceSpec struct {
	Name        string
	Description string
	VPC         resource.Ref
}

// NamespaceModel is what a plan compares of a namespace.
type NamespaceModel struct {
	Type string `attr:"type,forcenew"`
	VPC  string `attr:"vpc,forcenew"`
}

// Namespace is the namespace kind.
var Namespace = resource.Define[NamespaceSpec, NamespaceModel, struct{}, awsapi.ServiceDiscoveryAPI](KindNamespace, namespaceKind{}, connect)

type namespaceKind struct{}

type (
	namespace      = resource.Typed[NamespaceSpec]
	foundNamespace = resource.Found[NamespaceModel, struct{}]
)

func (namespaceKind) Desired(r *namespace, refs resource.Refs) NamespaceModel {
	return NamespaceModel{Type: string(sdtypes.NamespaceTypeDnsPrivate), VPC: r.Spec.VPC.Resolve(refs)}
}

// findNamespace returns the namespace named name, or nil. The namespace's
// Read and its service's both ask it: a plan asks once (resource.Shared).
func findNamespace(ctx context.Context, x *x, name string) (*sdtypes.NamespaceSummary, error) {
	return resource.Shared(x, "servicediscovery ListNamespaces "+name, func() (*sdtypes.NamespaceSummary, error) {
		return listNamespace(ctx, x, name)
	})
}

func listNamespace(ctx context.Context, x *x, name string) (*sdtypes.NamespaceSummary, error) {
	p := sd.NewListNamespacesPaginator(x.API, &sd.ListNamespacesInput{Filters: []sdtypes.NamespaceFilter{
		{Name: sdtypes.NamespaceFilterNameName, Values: []string{name}, Condition: sdtypes.FilterConditionEq},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListNamespaces %s: %w", name, err)
		}
		if ns := named(page.Namespaces, name, func(n *sdtypes.NamespaceSummary) *string { return n.Name }); ns != nil {
			return ns, nil
		}
	}
	return nil, nil
}

// named is the item of items called name, nil when there is none.
func named[T any](items []T, name string, nameOf func(*T) *string) *T {
	for i := range items {
		if aws.ToString(nameOf(&items[i])) == name {
			return &items[i]
		}
	}
	return nil
}

// readTags reads the tags of the Cloud Map resource arn; none and not
// found when it is gone (deleted since it was listed).
func readTags(ctx context.Context, x *x, arn string) (map[string]string, bool, error) {
	tags, err := awstags.CloudMapRead(ctx, x.API, arn)
	if awserr.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
	}
	return tags, true, nil
}

func (namespaceKind) Read(ctx context.Context, x *x, r *namespace) (*foundNamespace, error) {
	ns, err := findNamespace(ctx, x, r.Name)
	if err != nil || ns == nil {
		return nil, err
	}
	arn, id := aws.ToString(ns.Arn), aws.ToString(ns.Id)
	tags, found, err := readTags(ctx, x, arn)
	if err != nil || !found {
		return nil, err
	}
	vpc := tags[TagNamespaceVPC]
	delete(tags, TagNamespaceVPC)
	f := &foundNamespace{ID: id, ARN: arn, Tags: tags, Model: NamespaceModel{Type: string(ns.Type), VPC: vpc},
		Outputs: resource.Outputs{"id": id, "arn": arn, "name": r.Name, "vpc_id": vpc}}
	if ns.Properties != nil && ns.Properties.DnsProperties != nil {
		f.Outputs["hosted_zone_id"] = aws.ToString(ns.Properties.DnsProperties.HostedZoneId)
	}
	return f, nil
}

// ARNTypes and Adopt: a namespace tagged for the environment that its
// stack no longer has (service_discovery.namespace renamed) is read by
// its id and deleted.
func (namespaceKind) ARNTypes() []string { return []string{"servicediscovery:namespace"} }

func (k namespaceKind) Adopt(ctx context.Context, x *x, arn string) (*namespace, *foundNamespace, error) {
	id := arn[strings.LastIndex(arn, "/")+1:]
	name, err := namespaceName(ctx, x, id)
	if err != nil || name == "" {
		return nil, nil, err
	}
	ns := &namespace{Name: name, Spec: &NamespaceSpec{Name: name}}
	f, err := k.Read(ctx, x, ns)
	if err != nil || f == nil || f.ID != id {
		return nil, nil, err
	}
	return ns, f, nil
}

// namespaceName is the name of the namespace id ("" when there is none).
func namespaceName(ctx context.Context, x *x, id string) (string, error) {
	out, err := x.API.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(id)})
	if awserr.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("GetNamespace %s: %w", id, err)
	}
	return aws.ToString(out.Namespace.Name), nil
}

// waitOperation polls a Cloud Map operation until SUCCESS; FAIL carries
// ErrorCode/ErrorMessage (docs/research/aws-ecs.md §5, namespace row).
func waitOperation(ctx context.Context, x *x, address, what, id string) error {
	_, err := retry.Until(ctx, x.Waits(address, cloudMapBudget, cloudMapPollInterval), what, func() (struct{}, bool, error) {
		out, err := x.API.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String(id)})
		if err != nil {
			return struct{}{}, false, fmt.Errorf("GetOperation %s: %w", id, err)
		}
		switch op := out.Operation; op.Status {
		case sdtypes.OperationStatusSuccess:
			return struct{}{}, true, nil
		case sdtypes.OperationStatusFail:
			return struct{}{}, false, fmt.Errorf("%s: operation %s failed: %s: %s", what, id, aws.ToString(op.ErrorCode), aws.ToString(op.ErrorMessage))
		}
		return struct{}{}, false, nil
	})
	return err
}

// creatorRequestID is unique per create call: the SDK's retries of one call
// reuse it, which is all Cloud Map's idempotency is for, while a later
// create (after a destroy, or over someone else's resource) is never
// mistaken for an earlier request and answered with the old resource.
func creatorRequestID(name string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "deploybot-" + hex.EncodeToString(b) + "-" + name
	return id[:min(len(id), 64)]
}

func (k namespaceKind) Create(ctx context.Context, x *x, r *namespace, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	vpc := s.VPC.Resolve(refs)
	if vpc == plan.Unknown || vpc == "" {
		return nil, fmt.Errorf("namespace %s: the VPC has no id yet", s.Name)
	}
	tags := maps.Clone(r.Tags)
	tags[TagNamespaceVPC] = vpc
	out, err := x.API.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{
		Name:             aws.String(s.Name),
		Vpc:              aws.String(vpc),
		Description:      aws.String(s.Description),
		CreatorRequestId: aws.String(creatorRequestID(s.Name)),
		Tags:             awstags.CloudMapList(tags),
	})
	if awserr.IsAlreadyExists(err) || awserr.Code(err) == "DuplicateRequest" {
		// A namespace whose creation is still under way (a run that died
		// after asking for it) is not listed until its operation succeeds:
		// wait for it to appear rather than calling it someone else's.
		x.Say(r.Address, "the namespace is being created already; waiting for it")
		live, perr := retry.Until(ctx, x.Waits(r.Address, cloudMapBudget, cloudMapPollInterval), "namespace "+s.Name+" to be listed",
			func() (*foundNamespace, bool, error) {
				l, err := k.Read(ctx, x, r)
				return l, l != nil, err
			})
		if perr != nil && live == nil {
			return nil, fmt.Errorf("Cloud Map namespace %s exists but is not listed: %w", s.Name, perr)
		}
		if !resource.IsOurs(r.Tags, live.Tags) {
			return nil, fmt.Errorf("Cloud Map namespace %s %w", s.Name, resource.ErrNotOurs)
		}
		return live.Outputs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CreatePrivateDnsNamespace %s: %w", s.Name, err)
	}
	x.Say(r.Address, "waiting for Cloud Map to create the namespace")
	if err := waitOperation(ctx, x, r.Address, "create namespace "+s.Name, aws.ToString(out.OperationId)); err != nil {
		return nil, err
	}
	live, err := k.Read(ctx, x, r)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, fmt.Errorf("namespace %s: created but not found", s.Name)
	}
	return live.Outputs, nil
}

// Update changes tags only: the type and the VPC cannot change in place.
func (namespaceKind) Update(ctx context.Context, x *x, _ *namespace, d *resource.Delta[NamespaceModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	if err := awstags.CloudMap(x.API).Apply(ctx, d.Found.ARN, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

func (namespaceKind) Delete(ctx context.Context, x *x, r *namespace, _ *foundNamespace) error {
	ns, err := findNamespace(ctx, x, r.Name)
	if err != nil || ns == nil {
		return err
	}
	opID, err := retry.When(ctx, x.Waits(r.Address, cloudMapBudget, resource.RetryEvery), "DeleteNamespace", awserr.IsDependency,
		func() (string, error) {
			out, err := x.API.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: ns.Id})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.OperationId), nil
		})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("DeleteNamespace %s: %w", r.Name, err)
	}
	return waitOperation(ctx, x, r.Address, "delete namespace "+r.Name, opID)
}
