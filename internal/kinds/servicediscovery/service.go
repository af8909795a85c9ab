package servicediscovery

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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

// ServiceSpec is the Cloud Map service the ECS service registers in: A
// records, MULTIVALUE routing, custom health checks (ECS reports task
// health).
type ServiceSpec struct {
	Name          string
	Namespace     resource.Ref // namespace id
	NamespaceName string       // to find the namespace when reading
	Description   string
	TTL           int64
}

// ServiceModel is what a plan compares of a Cloud Map service. A live
// service without a DNS or health-check configuration has no such fields.
type ServiceModel struct {
	NamespaceID string  `attr:"namespace_id,forcenew"`
	DNSRecords  *string `attr:"dns_records"`
	Routing     *string `attr:"routing_policy,forcenew"`
	HealthCheck *string `attr:"health_check_custom_config,forcenew"`
}

// Service is the Cloud Map service kind.
var Service = resource.Define[ServiceSpec, ServiceModel, struct{}, awsapi.ServiceDiscoveryAPI](KindService, serviceKind{}, connect)

type serviceKind struct{}

type (
	service      = resource.Typed[ServiceSpec]
	foundService = resource.Found[ServiceModel, struct{}]
)

func dnsRecords(ttl int64) string { return "A:" + strconv.FormatInt(ttl, 10) }

// failureThreshold is how the custom health check shows: FailureThreshold
// is deprecated, Cloud Map always uses 1.
const failureThreshold = "failure_threshold=1"

func (serviceKind) Desired(r *service, refs resource.Refs) ServiceModel {
	return ServiceModel{NamespaceID: r.Spec.Namespace.Resolve(refs), DNSRecords: aws.String(dnsRecords(r.Spec.TTL)),
		Routing: aws.String(string(sdtypes.RoutingPolicyMultivalue)), HealthCheck: aws.String(failureThreshold)}
}

// Read finds the service through its namespace's name: Read may not use
// other resources' live state, so it looks the namespace up itself.
func (serviceKind) Read(ctx context.Context, x *x, r *service) (*foundService, error) {
	ns, err := findNamespace(ctx, x, r.Spec.NamespaceName)
	if err != nil || ns == nil {
		return nil, err
	}
	svc, err := findService(ctx, x, aws.ToString(ns.Id), r.Name)
	if err != nil || svc == nil {
		return nil, err
	}
	arn, id := aws.ToString(svc.Arn), aws.ToString(svc.Id)
	tags, found, err := readTags(ctx, x, arn)
	if err != nil || !found {
		return nil, err
	}
	f := &foundService{ID: id, ARN: arn, Tags: tags, Model: ServiceModel{NamespaceID: aws.ToString(ns.Id)},
		Outputs: resource.Outputs{"id": id, "arn": arn, "name": r.Name}}
	if dc := svc.DnsConfig; dc != nil {
		var recs []string
		for _, rec := range dc.DnsRecords {
			recs = append(recs, string(rec.Type)+":"+strconv.FormatInt(aws.ToInt64(rec.TTL), 10))
		}
		f.Model.DNSRecords = aws.String(strings.Join(recs, ","))
		f.Model.Routing = aws.String(string(dc.RoutingPolicy))
	}
	if svc.HealthCheckCustomConfig != nil {
		f.Model.HealthCheck = aws.String(failureThreshold)
	}
	return f, nil
}

// ARNTypes and Adopt: a Cloud Map service tagged for the environment that
// its stack no longer has (in a namespace that was renamed) is read by its
// id and deleted.
func (serviceKind) ARNTypes() []string { return []string{"servicediscovery:service"} }

func (k serviceKind) Adopt(ctx context.Context, x *x, arn string) (*service, *foundService, error) {
	id := arn[strings.LastIndex(arn, "/")+1:]
	out, err := x.API.GetService(ctx, &sd.GetServiceInput{Id: aws.String(id)})
	if awserr.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("GetService %s: %w", id, err)
	}
	nsName, err := namespaceName(ctx, x, aws.ToString(out.Service.NamespaceId))
	if err != nil || nsName == "" {
		return nil, nil, err
	}
	name := aws.ToString(out.Service.Name)
	s := &service{Name: name, Spec: &ServiceSpec{Name: name, NamespaceName: nsName}}
	f, err := k.Read(ctx, x, s)
	if err != nil || f == nil || f.ID != id {
		return nil, nil, err
	}
	return s, f, nil
}

func findService(ctx context.Context, x *x, namespaceID, name string) (*sdtypes.ServiceSummary, error) {
	p := sd.NewListServicesPaginator(x.API, &sd.ListServicesInput{Filters: []sdtypes.ServiceFilter{
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
		if svc := named(page.Services, name, func(s *sdtypes.ServiceSummary) *string { return s.Name }); svc != nil {
			return svc, nil
		}
	}
	return nil, nil
}

func (k serviceKind) Create(ctx context.Context, x *x, r *service, refs resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	nsID := s.Namespace.Resolve(refs)
	if nsID == plan.Unknown {
		return nil, fmt.Errorf("Cloud Map service %s: the namespace has no id yet", s.Name)
	}
	out, err := x.API.CreateService(ctx, &sd.CreateServiceInput{
		Name:        aws.String(s.Name),
		NamespaceId: aws.String(nsID),
		Description: aws.String(s.Description),
		DnsConfig: &sdtypes.DnsConfig{
			RoutingPolicy: sdtypes.RoutingPolicyMultivalue,
			DnsRecords:    []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(s.TTL)}},
		},
		HealthCheckCustomConfig: &sdtypes.HealthCheckCustomConfig{FailureThreshold: aws.Int32(1)},
		CreatorRequestId:        aws.String(creatorRequestID(s.Name)),
		Tags:                    awstags.CloudMapList(r.Tags),
	})
	if awserr.IsAlreadyExists(err) {
		live, err := k.Read(ctx, x, r)
		if err != nil {
			return nil, err
		}
		if live == nil || !resource.IsOurs(r.Tags, live.Tags) {
			return nil, fmt.Errorf("Cloud Map service %s %w", s.Name, resource.ErrNotOurs)
		}
		return live.Outputs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CreateService (Cloud Map) %s: %w", s.Name, err)
	}
	return resource.Outputs{"id": aws.ToString(out.Service.Id), "arn": aws.ToString(out.Service.Arn), "name": s.Name}, nil
}

func (serviceKind) Update(ctx context.Context, x *x, r *service, d *resource.Delta[ServiceModel, struct{}], _ resource.Refs) (resource.Outputs, error) {
	s := r.Spec
	if !resource.Equal(d.Desired.DNSRecords, d.Live.DNSRecords) {
		out, err := x.API.UpdateService(ctx, &sd.UpdateServiceInput{Id: aws.String(d.Found.ID), Service: &sdtypes.ServiceChange{
			DnsConfig: &sdtypes.DnsConfigChange{DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(s.TTL)}}},
		}})
		if err != nil {
			return nil, fmt.Errorf("UpdateService (Cloud Map) %s: %w", s.Name, err)
		}
		if err := waitOperation(ctx, x, r.Address, "update Cloud Map service "+s.Name, aws.ToString(out.OperationId)); err != nil {
			return nil, err
		}
	}
	if err := awstags.CloudMap(x.API).Apply(ctx, d.Found.ARN, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

// Delete deregisters leftover instances (ECS normally does), then deletes
// the service, retrying ResourceInUse (docs/research/aws-ecs.md §5 Cloud Map
// service row, §5.3 step 3).
func (k serviceKind) Delete(ctx context.Context, x *x, r *service, live *foundService) error {
	if live == nil {
		var err error
		if live, err = k.Read(ctx, x, r); err != nil || live == nil {
			return err
		}
	}
	id := live.ID
	inst := sd.NewListInstancesPaginator(x.API, &sd.ListInstancesInput{ServiceId: aws.String(id)})
	for inst.HasMorePages() {
		page, err := inst.NextPage(ctx)
		if awserr.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ListInstances %s: %w", id, err)
		}
		for _, i := range page.Instances {
			out, err := x.API.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(id), InstanceId: i.Id})
			if awserr.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("DeregisterInstance %s: %w", aws.ToString(i.Id), err)
			}
			if err := waitOperation(ctx, x, r.Address, "deregister instance "+aws.ToString(i.Id), aws.ToString(out.OperationId)); err != nil {
				return err
			}
		}
	}
	err := retry.Do(ctx, x.Waits(r.Address, cloudMapBudget, resource.RetryEvery), "DeleteService (Cloud Map)", awserr.IsDependency, func() error {
		_, err := x.API.DeleteService(ctx, &sd.DeleteServiceInput{Id: aws.String(id)})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("DeleteService (Cloud Map) %s: %w", r.Name, err)
	}
	return nil
}
