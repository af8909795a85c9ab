package resources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/stack"
)

// Cloud Map budgets: docs/research/aws-ecs.md §5 (servicediscovery wait.go
// OperationSuccessTimeout 5m; namespace and service deletes retry
// ResourceInUse / DuplicateRequest within it).
const (
	cloudMapBudget       = 5 * time.Minute
	cloudMapPollInterval = 5 * time.Second
)

// NamespaceKind is the Cloud Map private DNS namespace.
type NamespaceKind struct{}

// TagNamespaceVPC records the namespace's VPC on the namespace: Cloud Map
// does not return it (it lives in the Route 53 hosted zone), and a namespace
// in another VPC must be replaced.
const TagNamespaceVPC = "deploybot:vpc"

func (NamespaceKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := mustSpec[stack.NamespaceSpec](r)
	a := resource.Attrs{
		"type": {Value: string(sdtypes.NamespaceTypeDnsPrivate), ForceNew: true},
		"vpc":  {Value: s.VPC.Resolve(refs), ForceNew: true},
	}
	addTags(a, r.Tags)
	return a
}

// findNamespace returns the namespace named name, or nil.
func findNamespace(ctx context.Context, x *resource.Ctx, name string) (*sdtypes.NamespaceSummary, error) {
	p := sd.NewListNamespacesPaginator(x.AWS.Discovery, &sd.ListNamespacesInput{Filters: []sdtypes.NamespaceFilter{
		{Name: sdtypes.NamespaceFilterNameName, Values: []string{name}, Condition: sdtypes.FilterConditionEq},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListNamespaces %s: %w", name, err)
		}
		for i := range page.Namespaces {
			if aws.ToString(page.Namespaces[i].Name) == name {
				return &page.Namespaces[i], nil
			}
		}
	}
	return nil, nil
}

func discoveryTags(ctx context.Context, x *resource.Ctx, arn string) (map[string]string, error) {
	out, err := x.AWS.Discovery.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, t := range out.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m, nil
}

func discoveryTagList(tags map[string]string) []sdtypes.Tag {
	var out []sdtypes.Tag
	for _, k := range sortedTagKeys(tags) {
		out = append(out, sdtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func updateDiscoveryTags(ctx context.Context, x *resource.Ctx, arn string, desired, live map[string]string, ignore ...string) error {
	set, remove := tagChanges(desired, live, ignore...)
	if len(set) > 0 {
		if _, err := x.AWS.Discovery.TagResource(ctx, &sd.TagResourceInput{ResourceARN: aws.String(arn), Tags: discoveryTagList(set)}); err != nil {
			return fmt.Errorf("TagResource %s: %w", arn, err)
		}
	}
	if len(remove) > 0 {
		if _, err := x.AWS.Discovery.UntagResource(ctx, &sd.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: remove}); err != nil {
			return fmt.Errorf("UntagResource %s: %w", arn, err)
		}
	}
	return nil
}

func withTag(tags map[string]string, k, v string) map[string]string {
	out := copyMap(tags)
	out[k] = v
	return out
}

type liveDiscovery struct {
	id, arn string
	tags    map[string]string
}

func (NamespaceKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	ns, err := findNamespace(ctx, x, r.Name)
	if err != nil || ns == nil {
		return nil, err
	}
	arn, id := aws.ToString(ns.Arn), aws.ToString(ns.Id)
	tags, err := discoveryTags(ctx, x, arn)
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
	}
	a := resource.Attrs{
		"type": {Value: string(ns.Type), ForceNew: true},
		"vpc":  {Value: tags[TagNamespaceVPC], ForceNew: true},
	}
	delete(tags, TagNamespaceVPC)
	addTags(a, tags)
	out := resource.Outputs{"id": id, "arn": arn, "name": r.Name, "vpc_id": a["vpc"].Value}
	if ns.Properties != nil && ns.Properties.DnsProperties != nil {
		out["hosted_zone_id"] = aws.ToString(ns.Properties.DnsProperties.HostedZoneId)
	}
	return &resource.Live{ID: id, Ours: isOurs(r, tags), Attrs: a, Outputs: out,
		Raw: liveDiscovery{id: id, arn: arn, tags: tags}}, nil
}

// waitOperation polls a Cloud Map operation until SUCCESS; FAIL carries
// ErrorCode/ErrorMessage (docs/research/aws-ecs.md §5, namespace row).
func waitOperation(ctx context.Context, x *resource.Ctx, what, id string) (*sdtypes.Operation, error) {
	var op *sdtypes.Operation
	err := poll(ctx, x, what, cloudMapPollInterval, cloudMapBudget, func() (bool, error) {
		out, err := x.AWS.Discovery.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String(id)})
		if err != nil {
			return false, fmt.Errorf("GetOperation %s: %w", id, err)
		}
		op = out.Operation
		switch op.Status {
		case sdtypes.OperationStatusSuccess:
			return true, nil
		case sdtypes.OperationStatusFail:
			return false, fmt.Errorf("%s: operation %s failed: %s: %s", what, id, aws.ToString(op.ErrorCode), aws.ToString(op.ErrorMessage))
		}
		return false, nil
	})
	return op, err
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

func (k NamespaceKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.NamespaceSpec](r)
	if err != nil {
		return nil, err
	}
	vpc := s.VPC.Resolve(refs)
	if vpc == plan.Unknown || vpc == "" {
		return nil, fmt.Errorf("namespace %s: the VPC has no id yet", s.Name)
	}
	out, err := x.AWS.Discovery.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{
		Name:             aws.String(s.Name),
		Vpc:              aws.String(vpc),
		Description:      aws.String(s.Description),
		CreatorRequestId: aws.String(creatorRequestID(s.Name)),
		Tags:             discoveryTagList(withTag(r.Tags, TagNamespaceVPC, vpc)),
	})
	if awserr.IsAlreadyExists(err) || awserr.Code(err) == "DuplicateRequest" {
		// A namespace whose creation is still under way (a run that died
		// after asking for it) is not listed until its operation succeeds:
		// wait for it to appear rather than calling it someone else's.
		x.Say(r.Address, "the namespace is being created already; waiting for it")
		var live *resource.Live
		perr := poll(ctx, x, "namespace "+s.Name+" to be listed", cloudMapPollInterval, cloudMapBudget, func() (bool, error) {
			l, err := k.Read(ctx, x, r)
			live = l
			return l != nil, err
		})
		if perr != nil && live == nil {
			return nil, fmt.Errorf("Cloud Map namespace %s exists but is not listed: %w", s.Name, perr)
		}
		if !live.Ours {
			return nil, fmt.Errorf("Cloud Map namespace %s %w", s.Name, errConflict)
		}
		return live.Outputs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CreatePrivateDnsNamespace %s: %w", s.Name, err)
	}
	x.Say(r.Address, "waiting for Cloud Map to create the namespace")
	if _, err := waitOperation(ctx, x, "create namespace "+s.Name, aws.ToString(out.OperationId)); err != nil {
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

func (NamespaceKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, _ []plan.FieldChange) (resource.Outputs, error) {
	l := live.Raw.(liveDiscovery)
	if err := updateDiscoveryTags(ctx, x, l.arn, r.Tags, l.tags, TagNamespaceVPC); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

func (k NamespaceKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, _ *resource.Live) error {
	ns, err := findNamespace(ctx, x, r.Name)
	if err != nil || ns == nil {
		return err
	}
	var opID string
	err = retry(ctx, x, r.Address, "DeleteNamespace", cloudMapBudget, awserr.IsDependency, func() error {
		out, err := x.AWS.Discovery.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: ns.Id})
		if err == nil {
			opID = aws.ToString(out.OperationId)
		}
		return err
	})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("DeleteNamespace %s: %w", r.Name, err)
	}
	_, err = waitOperation(ctx, x, "delete namespace "+r.Name, opID)
	return err
}

// DiscoveryServiceKind is the Cloud Map service the ECS service registers
// its tasks in: A records, TTL 10, MULTIVALUE, custom health checks (ECS
// reports task health).
type DiscoveryServiceKind struct{}

func dnsRecords(ttl int64) string { return "A:" + strconv.FormatInt(ttl, 10) }

func (DiscoveryServiceKind) Desired(r *resource.Resource, refs resource.Refs) resource.Attrs {
	s := mustSpec[stack.DiscoveryServiceSpec](r)
	a := resource.Attrs{
		"namespace_id":               {Value: s.Namespace.Resolve(refs), ForceNew: true},
		"dns_records":                {Value: dnsRecords(s.TTL)},
		"routing_policy":             {Value: string(sdtypes.RoutingPolicyMultivalue), ForceNew: true},
		"health_check_custom_config": {Value: "failure_threshold=1", ForceNew: true},
	}
	addTags(a, r.Tags)
	return a
}

func (DiscoveryServiceKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	ns, err := findNamespace(ctx, x, namespaceNameOf(r))
	if err != nil || ns == nil {
		return nil, err
	}
	svc, err := findDiscoveryService(ctx, x, aws.ToString(ns.Id), r.Name)
	if err != nil || svc == nil {
		return nil, err
	}
	arn, id := aws.ToString(svc.Arn), aws.ToString(svc.Id)
	tags, err := discoveryTags(ctx, x, arn)
	if awserr.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ListTagsForResource %s: %w", arn, err)
	}
	a := resource.Attrs{"namespace_id": {Value: aws.ToString(ns.Id), ForceNew: true}}
	if dc := svc.DnsConfig; dc != nil {
		var recs string
		for i, rec := range dc.DnsRecords {
			if i > 0 {
				recs += ","
			}
			recs += string(rec.Type) + ":" + strconv.FormatInt(aws.ToInt64(rec.TTL), 10)
		}
		a["dns_records"] = resource.Attr{Value: recs}
		a["routing_policy"] = resource.Attr{Value: string(dc.RoutingPolicy), ForceNew: true}
	}
	if hc := svc.HealthCheckCustomConfig; hc != nil {
		// FailureThreshold is deprecated: Cloud Map always uses 1.
		a["health_check_custom_config"] = resource.Attr{Value: "failure_threshold=1", ForceNew: true}
	}
	addTags(a, tags)
	return &resource.Live{ID: id, Ours: isOurs(r, tags), Attrs: a,
		Outputs: resource.Outputs{"id": id, "arn": arn, "name": r.Name},
		Raw:     liveDiscovery{id: id, arn: arn, tags: tags}}, nil
}

// namespaceNameOf: the discovery service is found through its namespace's
// name, which is the namespace resource's Name (Read may not use other
// resources' live state, so it looks the namespace up itself).
func namespaceNameOf(r *resource.Resource) string {
	return mustSpec[stack.DiscoveryServiceSpec](r).NamespaceName
}

func findDiscoveryService(ctx context.Context, x *resource.Ctx, namespaceID, name string) (*sdtypes.ServiceSummary, error) {
	p := sd.NewListServicesPaginator(x.AWS.Discovery, &sd.ListServicesInput{Filters: []sdtypes.ServiceFilter{
		{Name: sdtypes.ServiceFilterNameNamespaceId, Values: []string{namespaceID}, Condition: sdtypes.FilterConditionEq},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if awserr.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ListServices %s: %w", namespaceID, err)
		}
		for i := range page.Services {
			if aws.ToString(page.Services[i].Name) == name {
				return &page.Services[i], nil
			}
		}
	}
	return nil, nil
}

func (k DiscoveryServiceKind) Create(ctx context.Context, x *resource.Ctx, r *resource.Resource, refs resource.Refs) (resource.Outputs, error) {
	s, err := specOf[stack.DiscoveryServiceSpec](r)
	if err != nil {
		return nil, err
	}
	nsID := s.Namespace.Resolve(refs)
	if nsID == plan.Unknown {
		return nil, fmt.Errorf("Cloud Map service %s: the namespace has no id yet", s.Name)
	}
	out, err := x.AWS.Discovery.CreateService(ctx, &sd.CreateServiceInput{
		Name:        aws.String(s.Name),
		NamespaceId: aws.String(nsID),
		Description: aws.String(s.Description),
		DnsConfig: &sdtypes.DnsConfig{
			RoutingPolicy: sdtypes.RoutingPolicyMultivalue,
			DnsRecords:    []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(s.TTL)}},
		},
		HealthCheckCustomConfig: &sdtypes.HealthCheckCustomConfig{FailureThreshold: aws.Int32(1)},
		CreatorRequestId:        aws.String(creatorRequestID(s.Name)),
		Tags:                    discoveryTagList(r.Tags),
	})
	if awserr.IsAlreadyExists(err) {
		live, err := k.Read(ctx, x, r)
		if err != nil {
			return nil, err
		}
		if live == nil || !live.Ours {
			return nil, fmt.Errorf("Cloud Map service %s %w", s.Name, errConflict)
		}
		return live.Outputs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CreateService (Cloud Map) %s: %w", s.Name, err)
	}
	return resource.Outputs{"id": aws.ToString(out.Service.Id), "arn": aws.ToString(out.Service.Arn), "name": s.Name}, nil
}

func (DiscoveryServiceKind) Update(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live, _ resource.Refs, changed []plan.FieldChange) (resource.Outputs, error) {
	s, err := specOf[stack.DiscoveryServiceSpec](r)
	if err != nil {
		return nil, err
	}
	l := live.Raw.(liveDiscovery)
	if changedPaths(changed)["dns_records"] {
		out, err := x.AWS.Discovery.UpdateService(ctx, &sd.UpdateServiceInput{Id: aws.String(l.id), Service: &sdtypes.ServiceChange{
			DnsConfig: &sdtypes.DnsConfigChange{DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(s.TTL)}}},
		}})
		if err != nil {
			return nil, fmt.Errorf("UpdateService (Cloud Map) %s: %w", s.Name, err)
		}
		if _, err := waitOperation(ctx, x, "update Cloud Map service "+s.Name, aws.ToString(out.OperationId)); err != nil {
			return nil, err
		}
	}
	if err := updateDiscoveryTags(ctx, x, l.arn, r.Tags, l.tags); err != nil {
		return nil, err
	}
	return live.Outputs, nil
}

// Delete deregisters leftover instances (ECS normally does), then deletes
// the service, retrying ResourceInUse (docs/research/aws-ecs.md §5 Cloud Map
// service row, §5.3 step 3).
func (k DiscoveryServiceKind) Delete(ctx context.Context, x *resource.Ctx, r *resource.Resource, live *resource.Live) error {
	if live == nil {
		var err error
		if live, err = k.Read(ctx, x, r); err != nil || live == nil {
			return err
		}
	}
	id := live.Raw.(liveDiscovery).id
	inst := sd.NewListInstancesPaginator(x.AWS.Discovery, &sd.ListInstancesInput{ServiceId: aws.String(id)})
	for inst.HasMorePages() {
		page, err := inst.NextPage(ctx)
		if awserr.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ListInstances %s: %w", id, err)
		}
		for _, i := range page.Instances {
			out, err := x.AWS.Discovery.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(id), InstanceId: i.Id})
			if awserr.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("DeregisterInstance %s: %w", aws.ToString(i.Id), err)
			}
			if _, err := waitOperation(ctx, x, "deregister instance "+aws.ToString(i.Id), aws.ToString(out.OperationId)); err != nil {
				return err
			}
		}
	}
	err := retry(ctx, x, r.Address, "DeleteService (Cloud Map)", cloudMapBudget, awserr.IsDependency, func() error {
		_, err := x.AWS.Discovery.DeleteService(ctx, &sd.DeleteServiceInput{Id: aws.String(id)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteService (Cloud Map) %s: %w", r.Name, err)
	}
	return nil
}
