package awssim

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

type sdNamespace struct {
	ID, ARN, Name, VPC, Description, CreatorRequestID, HostedZone string
	SOATTL                                                        int64
	Created                                                       time.Time
	Tags                                                          []sdtypes.Tag
	Status                                                        string // CREATING | ACTIVE | DELETING
	createOp, deleteOp                                            string
}

type sdService struct {
	ID, ARN, Name, NamespaceID, Description, CreatorRequestID string
	Type                                                      sdtypes.ServiceType
	DNS                                                       *sdtypes.DnsConfig
	HealthCustom                                              *sdtypes.HealthCheckCustomConfig
	Created                                                   time.Time
	Tags                                                      []sdtypes.Tag
	Instances                                                 map[string]map[string]string
}

type sdOperation struct {
	ID                      string
	Type                    sdtypes.OperationType
	Created, pendingAt, End time.Time
	Targets                 map[string]string
	ErrorCode, ErrorMessage string
	done                    bool
	apply                   func() (code, msg string) // runs once at End; a code means FAIL
}

type sdState struct {
	Namespaces map[string]*sdNamespace // by id
	Services   map[string]*sdService   // by id
	Ops        map[string]*sdOperation
	opOrder    []string
}

func (w *World) sd() *sdState {
	return State(w, "servicediscovery", func() *sdState {
		return &sdState{Namespaces: map[string]*sdNamespace{}, Services: map[string]*sdService{}, Ops: map[string]*sdOperation{}}
	})
}

func (w *World) sdARN(rest string) string {
	return "arn:aws:servicediscovery:" + w.Region + ":" + w.Account + ":" + rest
}

func (w *World) sdAdvance() {
	st := w.sd()
	now := w.Clock.Now()
	for _, id := range st.opOrder {
		op := st.Ops[id]
		if !op.done && !now.Before(op.End) {
			op.done = true
			if op.apply != nil {
				op.ErrorCode, op.ErrorMessage = op.apply()
			}
		}
	}
}

func (op *sdOperation) view(now time.Time) sdtypes.Operation {
	out := sdtypes.Operation{Id: aws.String(op.ID), Type: op.Type, CreateDate: aws.Time(op.Created), Targets: copyTags(op.Targets),
		Status: sdtypes.OperationStatusSubmitted, UpdateDate: aws.Time(op.Created)}
	switch {
	case op.done && op.ErrorCode != "":
		out.Status, out.ErrorCode, out.ErrorMessage, out.UpdateDate = sdtypes.OperationStatusFail, aws.String(op.ErrorCode), aws.String(op.ErrorMessage), aws.Time(op.End)
	case op.done:
		out.Status, out.UpdateDate = sdtypes.OperationStatusSuccess, aws.Time(op.End)
	case !now.Before(op.pendingAt):
		out.Status, out.UpdateDate = sdtypes.OperationStatusPending, aws.Time(op.pendingAt)
	}
	return out
}

func (w *World) newSDOperation(typ sdtypes.OperationType, d time.Duration, targets map[string]string, apply func() (string, string)) *sdOperation {
	now := w.Clock.Now()
	seq := w.NextSeq("sd-op")
	seed := fmt.Sprintf("op#%d", seq)
	op := &sdOperation{ID: token(seed, 32, alnumLower) + "-" + token(seed+"b", 8, alnumLower), Type: typ, Created: now,
		pendingAt: now.Add(min(w.timings.CloudMapSubmitted, d)), End: now.Add(d), Targets: targets, apply: apply}
	st := w.sd()
	st.Ops[op.ID] = op
	st.opOrder = append(st.opOrder, op.ID)
	return op
}

func namespaceNotFound(id string) error {
	return &sdtypes.NamespaceNotFound{Message: aws.String("Namespace not found: " + id)}
}

func sdServiceNotFound(id string) error {
	return &sdtypes.ServiceNotFound{Message: aws.String("Service not found: " + id)}
}

// visibleNamespace: created (not still CREATING), until its delete finishes.
func (w *World) visibleNamespace(id string) (*sdNamespace, error) {
	ns, ok := w.sd().Namespaces[id]
	if !ok || ns.Status == "CREATING" {
		return nil, namespaceNotFound(id)
	}
	return ns, nil
}

func (w *World) namespaceServiceCount(id string) int32 {
	n := int32(0)
	for _, s := range w.sd().Services {
		if s.NamespaceID == id {
			n++
		}
	}
	return n
}

func (ns *sdNamespace) props() *sdtypes.NamespaceProperties {
	return &sdtypes.NamespaceProperties{DnsProperties: &sdtypes.DnsProperties{HostedZoneId: aws.String(ns.HostedZone), SOA: &sdtypes.SOA{TTL: aws.Int64(ns.SOATTL)}}}
}

func (w *World) sdServiceByARN(arn string) *sdService {
	for _, s := range w.sd().Services {
		if s.ARN == arn {
			return s
		}
	}
	return nil
}

func (s *sdService) view(w *World) sdtypes.Service {
	return sdtypes.Service{Id: aws.String(s.ID), Arn: aws.String(s.ARN), Name: aws.String(s.Name), NamespaceId: aws.String(s.NamespaceID),
		Description: aws.String(s.Description), CreatorRequestId: aws.String(s.CreatorRequestID), DnsConfig: clone(s.DNS),
		HealthCheckCustomConfig: clone(s.HealthCustom), CreateDate: aws.Time(s.Created), InstanceCount: aws.Int32(int32(len(s.Instances))),
		Type: s.Type, CreatedByAccount: aws.String(w.Account), ResourceOwner: aws.String(w.Account)}
}

// sdRegisterTask registers a RUNNING task in its service's Cloud Map
// services (ECS does this for serviceRegistries). Callers hold w.Mu.
func (w *World) sdRegisterTask(t *ecsTask) {
	s := w.ecs().Services[t.ServiceARN]
	if s == nil {
		return
	}
	for _, r := range s.Registries {
		svc := w.sdServiceByARN(aws.ToString(r.RegistryArn))
		if svc == nil {
			continue
		}
		svc.Instances[t.ID] = map[string]string{
			"AWS_INSTANCE_IPV4": t.PrivateIP, "AVAILABILITY_ZONE": t.AZ, "AWS_INIT_HEALTH_STATUS": "HEALTHY",
			"ECS_CLUSTER_NAME": t.ClusterName, "ECS_SERVICE_NAME": t.ServiceName,
			"ECS_TASK_DEFINITION_FAMILY": aws.ToString(t.Def.Family), "REGION": w.Region,
		}
		t.sdInstances = append(t.sdInstances, svc.ID)
	}
}

// sdDeregisterTask removes a stopping task's instances. Callers hold w.Mu.
func (w *World) sdDeregisterTask(t *ecsTask) {
	for _, id := range t.sdInstances {
		if svc, ok := w.sd().Services[id]; ok {
			delete(svc.Instances, t.ID)
		}
	}
	t.sdInstances = nil
}

func sdTagsOf(w *World, arn string) (*[]sdtypes.Tag, error) {
	for _, ns := range w.sd().Namespaces {
		if ns.ARN == arn && ns.Status != "CREATING" {
			return &ns.Tags, nil
		}
	}
	if s := w.sdServiceByARN(arn); s != nil {
		return &s.Tags, nil
	}
	return nil, &sdtypes.ResourceNotFoundException{Message: aws.String("Resource not found: " + arn)}
}

var sdTags = tagList[sdtypes.Tag](func(t sdtypes.Tag) (*string, *string) { return t.Key, t.Value })

func filterMatches(cond sdtypes.FilterCondition, values []string, v string) bool {
	for _, want := range values {
		switch cond {
		case sdtypes.FilterConditionBeginsWith:
			if strings.HasPrefix(v, want) {
				return true
			}
		default: // EQ (the default) and IN
			if v == want {
				return true
			}
		}
	}
	return false
}

func init() {
	registerAdvancer(func(w *World) { w.sdAdvance() })
	RegisterInventory(func(w *World) []Item {
		st := w.sd()
		return append(listed(st.Namespaces, func(_ string, ns *sdNamespace) (Item, bool) {
			return Item{Service: "servicediscovery", Type: "namespace", ID: ns.ARN, Tags: sdTags.asMap(ns.Tags)}, ns.Status != "CREATING"
		}), listed(st.Services, func(_ string, s *sdService) (Item, bool) {
			return Item{Service: "servicediscovery", Type: "service", ID: s.ARN, Tags: sdTags.asMap(s.Tags)}, true
		})...)
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.CreatePrivateDnsNamespaceInput) (*servicediscovery.CreatePrivateDnsNamespaceOutput, error) {
		w.advance()
		name := strings.TrimSuffix(aws.ToString(in.Name), ".")
		crid := aws.ToString(in.CreatorRequestId)
		if name == "" || aws.ToString(in.Vpc) == "" {
			return nil, &sdtypes.InvalidInput{Message: aws.String("Name and Vpc are required.")}
		}
		st := w.sd()
		for _, ns := range st.Namespaces {
			if ns.Name != name {
				continue
			}
			// CreatorRequestId makes a retried create return the same operation.
			if crid != "" && ns.CreatorRequestID == crid {
				return &servicediscovery.CreatePrivateDnsNamespaceOutput{OperationId: aws.String(ns.createOp)}, nil
			}
			return nil, &sdtypes.NamespaceAlreadyExists{Message: aws.String("Namespace with name " + name + " already exists."),
				CreatorRequestId: aws.String(ns.CreatorRequestID), NamespaceId: aws.String(ns.ID)}
		}
		seq := w.NextSeq("sd-namespace")
		id := "ns-" + token(fmt.Sprintf("ns#%d", seq), 16, alnumLower)
		ns := &sdNamespace{ID: id, ARN: w.sdARN("namespace/" + id), Name: name, VPC: aws.ToString(in.Vpc), Description: aws.ToString(in.Description),
			CreatorRequestID: crid, HostedZone: "Z" + token(fmt.Sprintf("hz#%d", seq), 20, alnumUpper), SOATTL: 15, Created: w.Clock.Now(),
			Tags: clone(in.Tags), Status: "CREATING"}
		if p := in.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil && p.DnsProperties.SOA.TTL != nil {
			ns.SOATTL = *p.DnsProperties.SOA.TTL
		}
		st.Namespaces[id] = ns
		op := w.newSDOperation(sdtypes.OperationTypeCreateNamespace, w.timings.CloudMapNamespaceCreate, map[string]string{"NAMESPACE": id}, func() (string, string) {
			// The hosted zone is associated with the VPC, which must exist.
			if _, ok := w.EC2State().VPCs[ns.VPC]; !ok {
				delete(st.Namespaces, id)
				return "CANNOT_CREATE_HOSTED_ZONE", "Unable to create the hosted zone: InvalidVPCId: The VPC " + ns.VPC + " you provided is not authorized to make the association."
			}
			ns.Status = "ACTIVE"
			return "", ""
		})
		ns.createOp = op.ID
		return &servicediscovery.CreatePrivateDnsNamespaceOutput{OperationId: aws.String(op.ID)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.GetOperationInput) (*servicediscovery.GetOperationOutput, error) {
		w.advance()
		op, ok := w.sd().Ops[aws.ToString(in.OperationId)]
		if !ok {
			return nil, &sdtypes.OperationNotFound{Message: aws.String("Operation not found: " + aws.ToString(in.OperationId))}
		}
		return &servicediscovery.GetOperationOutput{Operation: ptr(op.view(w.Clock.Now()))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.GetNamespaceInput) (*servicediscovery.GetNamespaceOutput, error) {
		w.advance()
		ns, err := w.visibleNamespace(aws.ToString(in.Id))
		if err != nil {
			return nil, err
		}
		return &servicediscovery.GetNamespaceOutput{Namespace: &sdtypes.Namespace{Id: aws.String(ns.ID), Arn: aws.String(ns.ARN), Name: aws.String(ns.Name),
			Type: sdtypes.NamespaceTypeDnsPrivate, Description: aws.String(ns.Description), CreatorRequestId: aws.String(ns.CreatorRequestID),
			ServiceCount: aws.Int32(w.namespaceServiceCount(ns.ID)), Properties: ns.props(), CreateDate: aws.Time(ns.Created), ResourceOwner: aws.String(w.Account)}}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.ListNamespacesInput) (*servicediscovery.ListNamespacesOutput, error) {
		w.advance()
		var list []sdtypes.NamespaceSummary
		for _, id := range sortedKeys(w.sd().Namespaces) {
			ns := w.sd().Namespaces[id]
			if ns.Status == "CREATING" {
				continue
			}
			ok := true
			for _, f := range in.Filters {
				switch f.Name {
				case sdtypes.NamespaceFilterNameType:
					ok = ok && filterMatches(f.Condition, f.Values, string(sdtypes.NamespaceTypeDnsPrivate))
				case sdtypes.NamespaceFilterNameName:
					ok = ok && filterMatches(f.Condition, f.Values, ns.Name)
				case sdtypes.NamespaceFilterNameResourceOwner:
					ok = ok && filterMatches(f.Condition, f.Values, "SELF")
				default:
					ok = false
				}
			}
			if ok {
				list = append(list, sdtypes.NamespaceSummary{Id: aws.String(ns.ID), Arn: aws.String(ns.ARN), Name: aws.String(ns.Name),
					Type: sdtypes.NamespaceTypeDnsPrivate, Description: aws.String(ns.Description), ServiceCount: aws.Int32(w.namespaceServiceCount(ns.ID)),
					Properties: ns.props(), CreateDate: aws.Time(ns.Created), ResourceOwner: aws.String(w.Account)})
			}
		}
		page, next, err := paginate(list, in.NextToken, in.MaxResults, 100)
		return &servicediscovery.ListNamespacesOutput{Namespaces: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.DeleteNamespaceInput) (*servicediscovery.DeleteNamespaceOutput, error) {
		w.advance()
		ns, err := w.visibleNamespace(aws.ToString(in.Id))
		if err != nil {
			return nil, err
		}
		if ns.Status == "DELETING" {
			return nil, &sdtypes.DuplicateRequest{Message: aws.String("Another operation of type DeleteNamespace is in progress for namespace " + ns.ID), DuplicateOperationId: aws.String(ns.deleteOp)}
		}
		if w.namespaceServiceCount(ns.ID) > 0 {
			return nil, &sdtypes.ResourceInUse{Message: aws.String("Namespace " + ns.ID + " has one or more services and can't be deleted.")}
		}
		ns.Status = "DELETING"
		op := w.newSDOperation(sdtypes.OperationTypeDeleteNamespace, w.timings.CloudMapNamespaceDelete, map[string]string{"NAMESPACE": ns.ID}, func() (string, string) {
			delete(w.sd().Namespaces, ns.ID)
			return "", ""
		})
		ns.deleteOp = op.ID
		return &servicediscovery.DeleteNamespaceOutput{OperationId: aws.String(op.ID)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.CreateServiceInput) (*servicediscovery.CreateServiceOutput, error) {
		w.advance()
		nsID := aws.ToString(in.NamespaceId)
		if nsID == "" && in.DnsConfig != nil {
			nsID = aws.ToString(in.DnsConfig.NamespaceId)
		}
		ns, err := w.visibleNamespace(nsID)
		if err != nil {
			return nil, err
		}
		if ns.Status == "DELETING" {
			return nil, namespaceNotFound(nsID)
		}
		name := aws.ToString(in.Name)
		crid := aws.ToString(in.CreatorRequestId)
		for _, s := range w.sd().Services {
			if s.NamespaceID == ns.ID && s.Name == name {
				if crid != "" && crid == s.CreatorRequestID {
					return &servicediscovery.CreateServiceOutput{Service: ptr(s.view(w))}, nil
				}
				return nil, &sdtypes.ServiceAlreadyExists{Message: aws.String("Service already exists."), ServiceId: aws.String(s.ID),
					ServiceArn: aws.String(s.ARN), CreatorRequestId: aws.String(s.CreatorRequestID)}
			}
		}
		id := "srv-" + token(fmt.Sprintf("srv#%d", w.NextSeq("sd-service")), 16, alnumLower)
		s := &sdService{ID: id, ARN: w.sdARN("service/" + id), Name: name, NamespaceID: ns.ID, Description: aws.ToString(in.Description),
			CreatorRequestID: crid, DNS: clone(in.DnsConfig), HealthCustom: clone(in.HealthCheckCustomConfig), Created: w.Clock.Now(),
			Tags: clone(in.Tags), Instances: map[string]map[string]string{}, Type: sdtypes.ServiceTypeDnsHttp}
		if s.DNS != nil {
			s.DNS.NamespaceId = aws.String(ns.ID)
			if s.DNS.RoutingPolicy == "" {
				s.DNS.RoutingPolicy = sdtypes.RoutingPolicyMultivalue
			}
		} else {
			s.Type = sdtypes.ServiceTypeHttp
		}
		w.sd().Services[id] = s
		return &servicediscovery.CreateServiceOutput{Service: ptr(s.view(w))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.GetServiceInput) (*servicediscovery.GetServiceOutput, error) {
		w.advance()
		s, ok := w.sd().Services[aws.ToString(in.Id)]
		if !ok {
			return nil, sdServiceNotFound(aws.ToString(in.Id))
		}
		return &servicediscovery.GetServiceOutput{Service: ptr(s.view(w))}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.ListServicesInput) (*servicediscovery.ListServicesOutput, error) {
		w.advance()
		var list []sdtypes.ServiceSummary
		for _, id := range sortedKeys(w.sd().Services) {
			s := w.sd().Services[id]
			ok := true
			for _, f := range in.Filters {
				switch f.Name {
				case sdtypes.ServiceFilterNameNamespaceId:
					ok = ok && filterMatches(f.Condition, f.Values, s.NamespaceID)
				case sdtypes.ServiceFilterNameResourceOwner:
					ok = ok && filterMatches(f.Condition, f.Values, "SELF")
				default:
					ok = false
				}
			}
			if ok {
				v := s.view(w)
				list = append(list, sdtypes.ServiceSummary{Id: v.Id, Arn: v.Arn, Name: v.Name, Description: v.Description, DnsConfig: v.DnsConfig,
					HealthCheckCustomConfig: v.HealthCheckCustomConfig, InstanceCount: v.InstanceCount, CreateDate: v.CreateDate, Type: v.Type,
					CreatedByAccount: v.CreatedByAccount, ResourceOwner: v.ResourceOwner})
			}
		}
		page, next, err := paginate(list, in.NextToken, in.MaxResults, 100)
		return &servicediscovery.ListServicesOutput{Services: page, NextToken: next}, err
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.UpdateServiceInput) (*servicediscovery.UpdateServiceOutput, error) {
		w.advance()
		s, ok := w.sd().Services[aws.ToString(in.Id)]
		if !ok {
			return nil, sdServiceNotFound(aws.ToString(in.Id))
		}
		change := clone(in.Service)
		op := w.newSDOperation(sdtypes.OperationTypeUpdateService, w.timings.CloudMapInstanceOp, map[string]string{"SERVICE": s.ID}, func() (string, string) {
			if change == nil {
				return "", ""
			}
			if change.Description != nil {
				s.Description = aws.ToString(change.Description)
			}
			if change.DnsConfig != nil && s.DNS != nil {
				s.DNS.DnsRecords = change.DnsConfig.DnsRecords
			}
			return "", ""
		})
		return &servicediscovery.UpdateServiceOutput{OperationId: aws.String(op.ID)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.DeleteServiceInput) (*servicediscovery.DeleteServiceOutput, error) {
		w.advance()
		s, ok := w.sd().Services[aws.ToString(in.Id)]
		if !ok {
			return nil, sdServiceNotFound(aws.ToString(in.Id))
		}
		// docs/research/aws-ecs.md §5 table: ResourceInUse while instances remain.
		if len(s.Instances) > 0 {
			return nil, &sdtypes.ResourceInUse{Message: aws.String("Service contains registered instances; delete the instances before deleting the service")}
		}
		delete(w.sd().Services, s.ID)
		return &servicediscovery.DeleteServiceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.ListInstancesInput) (*servicediscovery.ListInstancesOutput, error) {
		w.advance()
		s, ok := w.sd().Services[aws.ToString(in.ServiceId)]
		if !ok {
			return nil, sdServiceNotFound(aws.ToString(in.ServiceId))
		}
		var list []sdtypes.InstanceSummary
		ids := sortedKeys(s.Instances)
		sort.Strings(ids)
		for _, id := range ids {
			list = append(list, sdtypes.InstanceSummary{Id: aws.String(id), Attributes: copyTags(s.Instances[id]), CreatedByAccount: aws.String(w.Account)})
		}
		page, next, err := paginate(list, in.NextToken, in.MaxResults, 100)
		return &servicediscovery.ListInstancesOutput{Instances: page, NextToken: next, ResourceOwner: aws.String(w.Account)}, err
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.DeregisterInstanceInput) (*servicediscovery.DeregisterInstanceOutput, error) {
		w.advance()
		s, ok := w.sd().Services[aws.ToString(in.ServiceId)]
		if !ok {
			return nil, sdServiceNotFound(aws.ToString(in.ServiceId))
		}
		inst := aws.ToString(in.InstanceId)
		if _, ok := s.Instances[inst]; !ok {
			return nil, &sdtypes.InstanceNotFound{Message: aws.String("Instance not found: " + inst)}
		}
		op := w.newSDOperation(sdtypes.OperationTypeDeregisterInstance, w.timings.CloudMapInstanceOp, map[string]string{"SERVICE": s.ID, "INSTANCE": inst}, func() (string, string) {
			delete(s.Instances, inst)
			return "", ""
		})
		return &servicediscovery.DeregisterInstanceOutput{OperationId: aws.String(op.ID)}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.ListTagsForResourceInput) (*servicediscovery.ListTagsForResourceOutput, error) {
		w.advance()
		tags, err := sdTagsOf(w, aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		out := sdTags.listed(*tags)
		return &servicediscovery.ListTagsForResourceOutput{Tags: out}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.TagResourceInput) (*servicediscovery.TagResourceOutput, error) {
		w.advance()
		tags, err := sdTagsOf(w, aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		*tags = sdTags.merge(*tags, in.Tags)
		return &servicediscovery.TagResourceOutput{}, nil
	})

	Handle(func(ctx context.Context, w *World, in *servicediscovery.UntagResourceInput) (*servicediscovery.UntagResourceOutput, error) {
		w.advance()
		tags, err := sdTagsOf(w, aws.ToString(in.ResourceARN))
		if err != nil {
			return nil, err
		}
		*tags = sdTags.untag(*tags, in.TagKeys)
		return &servicediscovery.UntagResourceOutput{}, nil
	})
}
