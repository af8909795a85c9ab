// Package ec2 holds the network kinds of a stack: vpc, subnet,
// internet_gateway, route_table, eip, nat_gateway and security_group. Each
// is read by its Name tag alone (no other resource's id is needed, so every
// Read of a plan runs at once), all resources of a kind with one Describe
// call (resource.BatchReader), and is this environment's only if it carries
// deploybot:environment=NAME; one found by Name without it is a conflict,
// never taken over.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploybot/deploybot/internal/awsapi"
	"github.com/deploybot/deploybot/internal/awstags"
	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
	"github.com/deploybot/deploybot/internal/retry"
)

// Kind names.
const (
	KindVPC             resource.KindName = "vpc"
	KindSubnet          resource.KindName = "subnet"
	KindInternetGateway resource.KindName = "internet_gateway"
	KindRouteTable      resource.KindName = "route_table"
	KindEIP             resource.KindName = "eip"
	KindNATGateway      resource.KindName = "nat_gateway"
	KindSecurityGroup   resource.KindName = "security_group"
)

// Budgets and delays of the network kinds, before the Ctx budget scaling,
// from the Terraform AWS provider (docs/research/aws-ecs.md §5 and its
// source index):
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
const (
	pollEvery          = 10 * time.Second
	sgDeleteBudget     = 15 * time.Minute
	igwBudget          = 20 * time.Minute
	subnetDeleteBudget = 20 * time.Minute
	rtDeleteBudget     = 5 * time.Minute
	vpcDeleteBudget    = 5 * time.Minute
	natCreateBudget    = 10 * time.Minute
	natDeleteBudget    = 30 * time.Minute
	eipReleaseBudget   = 5 * time.Minute
	// natPendingGuess is how long a NAT gateway usually takes to change
	// state (create or delete: a minute or two).
	natPendingGuess = time.Minute
)

// x is what the network kinds get: the EC2 client only.
type x = resource.Context[awsapi.EC2API]

func connect(a resource.APIs) (awsapi.EC2API, error) { return a.AWS.EC2, nil }

// byNames finds the resources of rs by their Name tags: EC2 ORs the values
// of one filter, so one Describe call finds every resource of a kind in a
// plan, ours and same-named ones that are not (the conflicts). A filter
// takes up to 200 values; a plan has a few of each kind.
func byNames[S any](rs []*resource.Typed[S]) []ec2types.Filter {
	return []ec2types.Filter{{Name: aws.String("tag:Name"), Values: names(rs)}}
}

// names are the Name tags of rs, in order, for filters and errors.
func names[S any](rs []*resource.Typed[S]) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// match gives each resource of rs the live state pick chooses among those
// whose Name tag is the resource's name (names are unique per kind in a
// stack), with what only ours need read by more (when set); a resource with
// none is missing from the map (absent).
func match[S, M, L any](ctx context.Context, x *x, rs []*resource.Typed[S], found []*resource.Found[M, L],
	more func(context.Context, *x, *resource.Found[M, L]) error) (map[string]*resource.Found[M, L], error) {
	byName := map[string][]*resource.Found[M, L]{}
	for _, f := range found {
		byName[f.Tags["Name"]] = append(byName[f.Tags["Name"]], f)
	}
	out := map[string]*resource.Found[M, L]{}
	for _, r := range rs {
		f, ours := pick(r.Tags, byName[r.Name])
		if f == nil {
			continue
		}
		if ours && more != nil {
			if err := more(ctx, x, f); err != nil {
				return nil, err
			}
		}
		out[r.Address] = f
	}
	return out, nil
}

// pick chooses among resources found by Name: ours first (lowest id, so
// the choice is stable); else the first one found, as a conflict; nil when
// none is.
func pick[M, L any](desired map[string]string, found []*resource.Found[M, L]) (*resource.Found[M, L], bool) {
	found = slices.Clone(found) // the caller's order stays
	sort.SliceStable(found, func(i, j int) bool { return found[i].ID < found[j].ID })
	for _, f := range found {
		if resource.IsOurs(desired, f.Tags) {
			return f, true
		}
	}
	if len(found) > 0 {
		return found[0], false
	}
	return nil, false
}

// finder is how an EC2 kind reads its resources: one Describe call (op)
// filtered by the Name tags of a plan's resources (and filter), each item
// made into live state by found and matched by its Name tag with its
// resource (match); more, when set, reads what only a resource that is ours
// needs (attributes that take a call each). Embedded in the kind, it is its
// ReadAll, and its Adopt: the same
// Describe filtered by the id at the end of an ARN (idFilter) instead of
// Name tags, for a resource tagged for the environment that its stack no
// longer has; nil when EC2 has no such resource (the tagging index lags
// behind deletes).
type finder[S, T, M, L any] struct {
	op, idFilter, arnType string
	filter                []ec2types.Filter
	describe              func(ctx context.Context, x *x, f []ec2types.Filter) ([]T, error)
	found                 func(T) *resource.Found[M, L]
	more                  func(context.Context, *x, *resource.Found[M, L]) error
}

// lookup is the live state of what a Describe call filtered by filter finds.
func (f finder[S, T, M, L]) lookup(ctx context.Context, x *x, filter []ec2types.Filter) ([]*resource.Found[M, L], error) {
	items, err := f.describe(ctx, x, append(filter, f.filter...))
	if err != nil {
		return nil, err
	}
	found := make([]*resource.Found[M, L], len(items))
	for i, it := range items {
		found[i] = f.found(it)
	}
	return found, nil
}

// ReadAll reads every resource of rs with one Describe call.
func (f finder[S, T, M, L]) ReadAll(ctx context.Context, x *x, rs []*resource.Typed[S]) (map[string]*resource.Found[M, L], error) {
	found, err := f.lookup(ctx, x, byNames(rs))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", f.op, strings.Join(names(rs), ", "), err)
	}
	return match(ctx, x, rs, found, f.more)
}

// Read is ReadAll of the one resource, so that a single read and a plan's
// batch read are the same code.
func (f finder[S, T, M, L]) Read(ctx context.Context, x *x, r *resource.Typed[S]) (*resource.Found[M, L], error) {
	found, err := f.ReadAll(ctx, x, []*resource.Typed[S]{r})
	if err != nil {
		return nil, err
	}
	return found[r.Address], nil
}

// ARNTypes is the type of the kind's ARNs.
func (f finder[S, T, M, L]) ARNTypes() []string { return []string{f.arnType} }

// Adopt reads the resource arn names by its id.
func (f finder[S, T, M, L]) Adopt(ctx context.Context, x *x, arn string) (*resource.Typed[S], *resource.Found[M, L], error) {
	id := idOfARN(arn)
	found, err := f.lookup(ctx, x, []ec2types.Filter{{Name: aws.String(f.idFilter), Values: []string{id}}})
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", f.op, id, err)
	}
	for _, live := range found {
		if f.more != nil {
			if err := f.more(ctx, x, live); err != nil {
				return nil, nil, err
			}
		}
		return &resource.Typed[S]{Name: live.Tags["Name"], Spec: new(S)}, live, nil
	}
	return nil, nil, nil
}

// itemsOf is a Describe call's items, or its error.
func itemsOf[O, T any](out *O, err error, items func(*O) []T) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return items(out), nil
}

// Update is that of an EC2 kind whose only fields that can change in place
// are its tags; a kind with more defines its own.
func (f finder[S, T, M, L]) Update(ctx context.Context, x *x, _ *resource.Typed[S], d *resource.Delta[M, L], _ resource.Refs) (resource.Outputs, error) {
	return updateTags(ctx, x, d)
}

// updateTags applies the tags of an update, the last step of every EC2
// kind's Update.
func updateTags[M, L any](ctx context.Context, x *x, d *resource.Delta[M, L]) (resource.Outputs, error) {
	if err := awstags.EC2(x.API).Apply(ctx, d.Found.ID, d.Tags); err != nil {
		return nil, err
	}
	return d.Found.Outputs, nil
}

// deleteOurs is the Delete of every EC2 kind: del removes the live
// resource by its id. Deleting what is gone succeeds without a call; a
// resource found by its Name that is not this environment's is an error
// (what names it).
func deleteOurs[S, M, L any](r *resource.Typed[S], live *resource.Found[M, L], what string, del func(id string) error) error {
	if live == nil || live.ID == "" {
		return nil
	}
	if !resource.IsOurs(r.Tags, live.Tags) {
		return fmt.Errorf("%s %s (%s) exists without this environment's tags; deploybot does not delete it", what, r.Name, live.ID)
	}
	return del(live.ID)
}

// errOf is the error of an EC2 call whose answer is not needed.
func errOf[O any](_ O, err error) error { return err }

// retryBlocked calls fn until it succeeds, fails with an error retryable
// does not accept, or the budget (counted from start, scaled) runs out; then
// the error names what is in the way (blocker's description, when given)
// and that a re-run continues. A delete that spent part of its budget
// waiting already passes its own start.
func retryBlocked(ctx context.Context, x *x, address, what string, start time.Time, budget time.Duration,
	retryable func(error) bool, blocker func(context.Context) string, fn func() error) error {
	o := x.Waits(address, budget, pollEvery)
	o.Start = start
	err := retry.Do(ctx, o, what, retryable, fn)
	var te *retry.TimeoutError
	if !errors.As(err, &te) {
		return err
	}
	msg := fmt.Sprintf("%s: still blocked after %s", what, te.Elapsed.Round(time.Second))
	if blocker != nil {
		if b := blocker(ctx); b != "" {
			msg += " by " + b
		}
	}
	return fmt.Errorf("%s; re-run to continue once it is gone: %w", msg, te.Last)
}

// enis lists the network interfaces matching filter name=value, for
// waiting on them and naming them when they block a delete
// (docs/research/aws-ecs.md §5.1: "print the blocking ENI IDs and their
// Description / RequesterId").
func enis(ctx context.Context, x *x, name, value string) ([]ec2types.NetworkInterface, error) {
	out, err := x.API.DescribeNetworkInterfaces(ctx, &awsec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String(name), Values: []string{value}}}})
	if err != nil {
		return nil, fmt.Errorf("DescribeNetworkInterfaces %s=%s: %w", name, value, err)
	}
	return out.NetworkInterfaces, nil
}

// describeENIs names ENIs the way an operator needs to find their owner.
func describeENIs(list []ec2types.NetworkInterface) string {
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s (status %s, subnet %s, description %q, requester %s)",
			aws.ToString(e.NetworkInterfaceId), e.Status, aws.ToString(e.SubnetId), aws.ToString(e.Description), aws.ToString(e.RequesterId)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "network interface(s) " + strings.Join(parts, ", ")
}

// waitENIsGone waits (within budget, counted from start) until no ENI
// matches name=value, so that a delete is not tried while AWS still holds
// task ENIs (docs/research/aws-ecs.md §5.1 step 2), saying so at least every
// retry.ReportEvery. When the budget runs out it returns without error: the
// caller tries the delete anyway, and names the ENIs if it fails.
func waitENIsGone(ctx context.Context, x *x, address, name, value string, start time.Time, budget time.Duration) error {
	first, err := enis(ctx, x, name, value)
	if err != nil || len(first) == 0 {
		return err
	}
	o := x.Waits(address, budget, pollEvery)
	o.Start = start
	what := fmt.Sprintf("%d network interface(s) of %s to go away (Fargate releases task ENIs some time after the tasks stop)", len(first), value)
	left := first
	_, err = retry.Until(ctx, o, what, func() (struct{}, bool, error) {
		if left == nil {
			var err error
			if left, err = enis(ctx, x, name, value); err != nil {
				return struct{}{}, false, err
			}
		}
		done := len(left) == 0
		left = nil // the next attempt asks again
		return struct{}{}, done, nil
	})
	if retry.IsTimeout(err) {
		return nil
	}
	return err
}

// unknown says whether any of the values is not known yet.
func unknown(vs ...string) bool {
	for _, v := range vs {
		if v == plan.Unknown || v == "" {
			return true
		}
	}
	return false
}

// idOfARN is the resource id at the end of an EC2 ARN
// (arn:aws:ec2:REGION:ACCOUNT:security-group/sg-0123…).
func idOfARN(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
