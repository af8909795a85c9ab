package resources

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awserr"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// The network kinds: vpc, subnet, internet_gateway, route_table, eip,
// nat_gateway and security_group. Each is read by its Name tag alone (no
// other resource's id is needed, so every Read of a plan runs at once) and
// is this environment's only if it carries deploybot:environment=NAME; one
// found by Name without it is a conflict, never taken over.

// NetworkKinds returns the network kinds by kind name; Kinds() merges them.
func NetworkKinds() map[string]resource.Kind {
	return map[string]resource.Kind{
		"vpc":              VPCKind{},
		"subnet":           SubnetKind{},
		"internet_gateway": InternetGatewayKind{},
		"route_table":      RouteTableKind{},
		"eip":              EIPKind{},
		"nat_gateway":      NATGatewayKind{},
		"security_group":   SecurityGroupKind{},
	}
}

// Budgets and delays of the network kinds, before Ctx.Budget scaling, from
// the Terraform AWS provider (docs/research/aws-ecs.md §5 and its source index):
//   - security group delete 15m (vpc_security_group.go delete timeout);
//   - internet gateway detach and delete 20m each (vpc_internet_gateway.go);
//   - subnet delete 20m (vpc_subnet.go delete timeout);
//   - VPC delete 5m (wait.go vpcDeletedTimeout): by then its contents are gone;
//   - route table delete 5m (after disassociating, nothing else blocks it);
//   - NAT gateway create 10m and delete 30m (vpc_nat_gateway.go timeouts),
//     polled every 10 s (wait.go: Delay/MinTimeout 10s);
//   - EIP release 5m (ec2PropagationTimeout): the provider does not retry,
//     relying on the NAT's delete wait; we also retry the AuthFailure race
//     in case the NAT's delete was started by a run that died.
//
// The delay between attempts is the same 10 s.
var (
	netPollEvery          = 10 * time.Second
	netSGDeleteBudget     = 15 * time.Minute
	netIGWBudget          = 20 * time.Minute
	netSubnetDeleteBudget = 20 * time.Minute
	netRTDeleteBudget     = 5 * time.Minute
	netVPCDeleteBudget    = 5 * time.Minute
	netNATCreateBudget    = 10 * time.Minute
	netNATDeleteBudget    = 30 * time.Minute
	netEIPReleaseBudget   = 5 * time.Minute
)

// netSpec returns r's spec as *T.
func netSpec[T any](r *resource.Resource) (*T, error) {
	s, ok := r.Spec.(*T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("%s: spec is %T, want *%T", r.Address, r.Spec, zero)
	}
	return s, nil
}

// netMustSpec is netSpec for Desired, which cannot fail: a wrong spec is a
// programming error of the stack builder.
func netMustSpec[T any](r *resource.Resource) *T {
	s, err := netSpec[T](r)
	if err != nil {
		panic(err)
	}
	return s
}

func netTagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// netTagList is tags as EC2 wants them, sorted by key so calls are
// reproducible.
func netTagList(tags map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// netTagSpec tags the resource in its create call (docs/research/aws-ecs.md §6:
// a crash between create and tag must not leave an untagged orphan).
func netTagSpec(rt ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: netTagList(tags)}}
}

// netTagAttrs adds "tags.K" attrs; live attrs carry every tag the resource
// has, except AWS's own aws:* keys, so a tag removed from the file shows.
func netTagAttrs(a resource.Attrs, tags map[string]string) resource.Attrs {
	for k, v := range tags {
		if strings.HasPrefix(k, "aws:") {
			continue
		}
		a["tags."+k] = resource.Attr{Value: v}
	}
	return a
}

// netOurs: the live tags name this resource's environment.
func netOurs(r *resource.Resource, tags map[string]string) bool {
	env := r.Tags[resource.TagEnvironment]
	return env != "" && tags[resource.TagEnvironment] == env
}

// netByNamesFilter finds the resources of rs by their Name tags: EC2 ORs
// the values of one filter, so one Describe call finds every resource of a
// kind in a plan, ours and same-named ones that are not (the conflicts).
// A filter takes up to 200 values; a plan has a few of each kind.
func netByNamesFilter(rs []*resource.Resource) []ec2types.Filter {
	return []ec2types.Filter{{Name: aws.String("tag:Name"), Values: netNames(rs)}}
}

// netNames are the Name tags of rs, in order, for filters and errors.
func netNames(rs []*resource.Resource) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return names
}

// netReadOne is a kind's Read: its ReadAll of the one resource, so that a
// single read and a plan's batch read are the same code.
func netReadOne(ctx context.Context, x *resource.Ctx, k resource.BatchReader, r *resource.Resource) (*resource.Live, error) {
	lives, err := k.ReadAll(ctx, x, []*resource.Resource{r})
	if err != nil {
		return nil, err
	}
	return lives[r.Address], nil
}

// netMatch gives each resource of rs the item netPick chooses among the
// items whose Name tag is the resource's name, as live builds it (nil: not
// found after all); a resource with no such item is missing from the map
// (absent).
func netMatch[T any](rs []*resource.Resource, items []T, id func(T) string, tags func(T) map[string]string,
	live func(it T, ours bool) (*resource.Live, error)) (map[string]*resource.Live, error) {
	byName := map[string][]T{}
	for _, it := range items {
		name := tags(it)["Name"]
		byName[name] = append(byName[name], it)
	}
	out := map[string]*resource.Live{}
	for _, r := range rs {
		// A copy per resource: netPick sorts what it is given.
		it, ours, found := netPick(r, append([]T(nil), byName[r.Name]...), id, tags)
		if !found {
			continue
		}
		l, err := live(it, ours)
		if err != nil {
			return nil, err
		}
		if l != nil {
			out[r.Address] = l
		}
	}
	return out, nil
}

// netPick chooses among resources found by Name: ours first (lowest id, so
// the choice is stable); else the first one found, as a conflict.
func netPick[T any](r *resource.Resource, items []T, id func(T) string, tags func(T) map[string]string) (T, bool, bool) {
	var zero T
	sort.SliceStable(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	for _, it := range items {
		if netOurs(r, tags(it)) {
			return it, true, true
		}
	}
	if len(items) > 0 {
		return items[0], false, true
	}
	return zero, false, false
}

// netUpdateTags applies the tag changes among changed.
func netUpdateTags(ctx context.Context, x *resource.Ctx, id string, r *resource.Resource, changed []plan.FieldChange) error {
	set := map[string]string{}
	var remove []ec2types.Tag
	for _, c := range changed {
		k, ok := strings.CutPrefix(c.Path, "tags.")
		if !ok {
			continue
		}
		if v, want := r.Tags[k]; want {
			set[k] = v
		} else {
			remove = append(remove, ec2types.Tag{Key: aws.String(k)})
		}
	}
	if len(set) > 0 {
		if _, err := x.AWS.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: netTagList(set)}); err != nil {
			return fmt.Errorf("CreateTags %s: %w", id, err)
		}
	}
	if len(remove) > 0 {
		sort.Slice(remove, func(i, j int) bool { return *remove[i].Key < *remove[j].Key })
		if _, err := x.AWS.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: remove}); err != nil {
			return fmt.Errorf("DeleteTags %s: %w", id, err)
		}
	}
	return nil
}

// netChanged says whether path is among changed.
func netChanged(changed []plan.FieldChange, path string) bool {
	for _, c := range changed {
		if c.Path == path || strings.HasPrefix(c.Path, path+".") {
			return true
		}
	}
	return false
}

// netRetry calls fn until it succeeds, fails with an error retryable does not
// accept, or the budget (scaled by x.Wait) runs out on x.Clock; then the
// last error is returned, with blocker's description of what is in the way
// when one is given.
func netRetry(ctx context.Context, x *resource.Ctx, address, what string, budget time.Duration,
	retryable func(error) bool, blocker func(context.Context) string, fn func() error) error {
	now := x.Clock.Now()
	return netRetryUntil(ctx, x, address, what, now, now.Add(x.Wait(budget)), retryable, blocker, fn)
}

// netRetryUntil is netRetry with an explicit deadline, for a delete whose
// budget was partly spent waiting already (since started).
func netRetryUntil(ctx context.Context, x *resource.Ctx, address, what string, started, deadline time.Time,
	retryable func(error) bool, blocker func(context.Context) string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if !x.Clock.Now().Before(deadline) {
			msg := fmt.Sprintf("%s: still blocked after %s", what, x.Clock.Now().Sub(started).Round(time.Second))
			if blocker != nil {
				if b := blocker(ctx); b != "" {
					msg += " by " + b
				}
			}
			return fmt.Errorf("%s; re-run to continue once it is gone: %w", msg, err)
		}
		if attempt == 1 || attempt%6 == 0 {
			x.Say(address, fmt.Sprintf("%s: %s: %s; retrying", what, awserr.Code(err), awserr.Message(err)))
		}
		if err := x.Clock.Sleep(ctx, netPollEvery); err != nil {
			return err
		}
	}
}

// netENIs lists the network interfaces matching filter name=value, for
// waiting on them and naming them when they block a delete
// (docs/research/aws-ecs.md §5.1: "print the blocking ENI IDs and their
// Description / RequesterId").
func netENIs(ctx context.Context, x *resource.Ctx, name, value string) ([]ec2types.NetworkInterface, error) {
	out, err := x.AWS.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String(name), Values: []string{value}}}})
	if err != nil {
		return nil, fmt.Errorf("DescribeNetworkInterfaces %s=%s: %w", name, value, err)
	}
	return out.NetworkInterfaces, nil
}

// netDescribeENIs names ENIs the way an operator needs to find their owner.
func netDescribeENIs(enis []ec2types.NetworkInterface) string {
	var parts []string
	for _, e := range enis {
		parts = append(parts, fmt.Sprintf("%s (status %s, subnet %s, description %q, requester %s)",
			aws.ToString(e.NetworkInterfaceId), e.Status, aws.ToString(e.SubnetId), aws.ToString(e.Description), aws.ToString(e.RequesterId)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "network interface(s) " + strings.Join(parts, ", ")
}

// netWaitENIsGone waits (within budget) until no ENI matches name=value, so
// that a delete is not tried while AWS still holds task ENIs
// (docs/research/aws-ecs.md §5.1 step 2). It returns the ENIs still there when
// the budget ran out (the caller then tries the delete anyway, and names
// them if it fails).
func netWaitENIsGone(ctx context.Context, x *resource.Ctx, address, name, value string, deadline time.Time) ([]ec2types.NetworkInterface, error) {
	for said := false; ; said = true {
		enis, err := netENIs(ctx, x, name, value)
		if err != nil || len(enis) == 0 {
			return enis, err
		}
		if !x.Clock.Now().Before(deadline) {
			return enis, nil
		}
		if !said {
			x.Say(address, fmt.Sprintf("waiting for %d network interface(s) to go away (Fargate releases task ENIs some time after the tasks stop)", len(enis)))
		}
		if err := x.Clock.Sleep(ctx, netPollEvery); err != nil {
			return nil, err
		}
	}
}

// netIsCode returns a predicate for the given error codes.
func netIsCode(codes ...string) func(error) bool {
	return func(err error) bool {
		c := awserr.Code(err)
		for _, want := range codes {
			if c == want {
				return true
			}
		}
		return false
	}
}

// netJSONList is a sorted list as canonical JSON, the plan's list format.
func netJSONList(items []string) string {
	s := append([]string{}, items...)
	sort.Strings(s)
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(v))
	}
	b.WriteByte(']')
	return b.String()
}

// netUnknown says whether any of the values is not known yet.
func netUnknown(vs ...string) bool {
	for _, v := range vs {
		if v == plan.Unknown || v == "" {
			return true
		}
	}
	return false
}
