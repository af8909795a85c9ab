package awssim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/google/go-cmp/cmp"
)

// pollOperation polls GetOperation every 5 simulated seconds until it ends.
func pollOperation(t *testing.T, f *ecsFixture, c *servicediscovery.Client, id *string) (sdtypes.Operation, []sdtypes.OperationStatus) {
	t.Helper()
	var seen []sdtypes.OperationStatus
	for i := 0; i < 60; i++ {
		out, err := c.GetOperation(bg, &servicediscovery.GetOperationInput{OperationId: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != out.Operation.Status {
			seen = append(seen, out.Operation.Status)
		}
		if out.Operation.Status == sdtypes.OperationStatusSuccess || out.Operation.Status == sdtypes.OperationStatusFail {
			return *out.Operation, seen
		}
		f.clk.Advance(5 * time.Second)
	}
	t.Fatalf("operation did not end; statuses %v", seen)
	return sdtypes.Operation{}, nil
}

func TestCloudMapNamespaceAndServiceWithECSTasks(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{rolesAge: time.Minute})
	c := servicediscovery.NewFromConfig(f.w.Config())
	vpc := f.w.EC2State().Subnets[f.subnets[0]].VPCID
	create := &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("staging.prefect.internal"), Vpc: aws.String(vpc), CreatorRequestId: aws.String("req-1"),
		Tags: []sdtypes.Tag{{Key: aws.String("deploybot:environment"), Value: aws.String("staging")}}}
	op, err := c.CreatePrivateDnsNamespace(bg, create)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.CreatePrivateDnsNamespace(bg, create); err != nil || aws.ToString(again.OperationId) != aws.ToString(op.OperationId) {
		t.Fatalf("retry with the same CreatorRequestId: %v", err)
	}
	other := *create
	other.CreatorRequestId = aws.String("req-2")
	if _, err := c.CreatePrivateDnsNamespace(bg, &other); errCode(t, err) != "NamespaceAlreadyExists" {
		t.Fatalf("another creator: %v", err)
	}
	// Not listed while being created.
	if l, _ := c.ListNamespaces(bg, &servicediscovery.ListNamespacesInput{}); len(l.Namespaces) != 0 {
		t.Fatal("namespace visible before its operation succeeded")
	}
	done, seen := pollOperation(t, f, c, op.OperationId)
	if diff := cmp.Diff([]sdtypes.OperationStatus{"SUBMITTED", "PENDING", "SUCCESS"}, seen); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	nsID := done.Targets["NAMESPACE"]
	list, err := c.ListNamespaces(bg, &servicediscovery.ListNamespacesInput{Filters: []sdtypes.NamespaceFilter{
		{Name: sdtypes.NamespaceFilterNameType, Values: []string{"DNS_PRIVATE"}, Condition: sdtypes.FilterConditionEq},
		{Name: sdtypes.NamespaceFilterNameName, Values: []string{"staging.prefect.internal"}, Condition: sdtypes.FilterConditionEq}}})
	if err != nil || len(list.Namespaces) != 1 || aws.ToString(list.Namespaces[0].Id) != nsID {
		t.Fatalf("list = %+v %v", list, err)
	}
	svc, err := c.CreateService(bg, &servicediscovery.CreateServiceInput{Name: aws.String("worker"), NamespaceId: aws.String(nsID), CreatorRequestId: aws.String("svc-1"),
		DnsConfig:               &sdtypes.DnsConfig{DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(10)}}},
		HealthCheckCustomConfig: &sdtypes.HealthCheckCustomConfig{FailureThreshold: aws.Int32(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(bg, &servicediscovery.CreateServiceInput{Name: aws.String("worker"), NamespaceId: aws.String(nsID)}); errCode(t, err) != "ServiceAlreadyExists" {
		t.Fatalf("duplicate service: %v", err)
	}

	// ECS registers its RUNNING tasks and deregisters them when they stop.
	f.createService(t, f.register(t, "prefecthq/prefect-aws:0.5.0"), 1, ecstypes.ServiceRegistry{RegistryArn: svc.Service.Arn})
	f.waitDeployment(t, 10*time.Minute)
	inst, err := c.ListInstances(bg, &servicediscovery.ListInstancesInput{ServiceId: svc.Service.Id})
	if err != nil || len(inst.Instances) != 1 || !strings.HasPrefix(inst.Instances[0].Attributes["AWS_INSTANCE_IPV4"], "10.0.") {
		t.Fatalf("instances = %+v %v", inst, err)
	}
	steps := []struct {
		name string
		call func() error
		code string
	}{
		{"delete namespace with a service", call(bg, c.DeleteNamespace, &servicediscovery.DeleteNamespaceInput{Id: aws.String(nsID)}), "ResourceInUse"},
		{"delete service with instances", call(bg, c.DeleteService, &servicediscovery.DeleteServiceInput{Id: svc.Service.Id}), "ResourceInUse"},
		{"get a missing service", call(bg, c.GetService, &servicediscovery.GetServiceInput{Id: aws.String("srv-nope")}), "ServiceNotFound"},
		{"get a missing namespace", call(bg, c.GetNamespace, &servicediscovery.GetNamespaceInput{Id: aws.String("ns-nope")}), "NamespaceNotFound"},
		{"deregister a missing instance", call(bg, c.DeregisterInstance, &servicediscovery.DeregisterInstanceInput{ServiceId: svc.Service.Id, InstanceId: aws.String("nope")}), "InstanceNotFound"},
	}
	for _, s := range steps {
		if got := errCode(t, s.call()); got != s.code {
			t.Fatalf("%s: code %q, want %q", s.name, got, s.code)
		}
	}
	dereg, err := c.DeregisterInstance(bg, &servicediscovery.DeregisterInstanceInput{ServiceId: svc.Service.Id, InstanceId: inst.Instances[0].Id})
	if err != nil {
		t.Fatal(err)
	}
	if op, _ := pollOperation(t, f, c, dereg.OperationId); op.Status != sdtypes.OperationStatusSuccess {
		t.Fatalf("deregister: %+v", op)
	}
	// Tags given on create, read by ARN.
	ns, err := c.GetNamespace(bg, &servicediscovery.GetNamespaceInput{Id: aws.String(nsID)})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(bg, &servicediscovery.ListTagsForResourceInput{ResourceARN: ns.Namespace.Arn})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags = %+v %v", tags, err)
	}
	// With its instance deregistered the service can go (ECS registers a
	// task only when it starts RUNNING).
	if _, err := c.DeleteService(bg, &servicediscovery.DeleteServiceInput{Id: svc.Service.Id}); err != nil {
		t.Fatal(err)
	}
}

func TestCloudMapNamespaceInUnknownVPCFails(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{})
	c := servicediscovery.NewFromConfig(f.w.Config())
	op, err := c.CreatePrivateDnsNamespace(bg, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("x.internal"), Vpc: aws.String("vpc-0000000000000dead")})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := pollOperation(t, f, c, op.OperationId)
	if done.Status != sdtypes.OperationStatusFail || aws.ToString(done.ErrorCode) != "CANNOT_CREATE_HOSTED_ZONE" || !strings.Contains(aws.ToString(done.ErrorMessage), "vpc-0000000000000dead") {
		t.Fatalf("operation = %+v", done)
	}
	// The name is free again.
	if _, err := c.CreatePrivateDnsNamespace(bg, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("x.internal"), Vpc: aws.String("vpc-0000000000000dead")}); err != nil {
		t.Fatal(err)
	}
}

func TestCloudMapDeleteNamespaceIsAsync(t *testing.T) {
	t.Parallel()
	f := newECSFixture(t, fixtureOpts{})
	c := servicediscovery.NewFromConfig(f.w.Config())
	vpc := f.w.EC2State().Subnets[f.subnets[0]].VPCID
	op, err := c.CreatePrivateDnsNamespace(bg, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("y.internal"), Vpc: aws.String(vpc)})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := pollOperation(t, f, c, op.OperationId)
	id := aws.String(done.Targets["NAMESPACE"])
	del, err := c.DeleteNamespace(bg, &servicediscovery.DeleteNamespaceInput{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteNamespace(bg, &servicediscovery.DeleteNamespaceInput{Id: id}); errCode(t, err) != "DuplicateRequest" {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.GetNamespace(bg, &servicediscovery.GetNamespaceInput{Id: id}); err != nil {
		t.Fatalf("namespace gone before its delete operation finished: %v", err)
	}
	if op, _ := pollOperation(t, f, c, del.OperationId); op.Status != sdtypes.OperationStatusSuccess {
		t.Fatalf("delete operation = %+v", op)
	}
	if _, err := c.GetNamespace(bg, &servicediscovery.GetNamespaceInput{Id: id}); errCode(t, err) != "NamespaceNotFound" {
		t.Fatalf("after delete: %v", err)
	}
}
