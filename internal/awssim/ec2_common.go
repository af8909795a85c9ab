package awssim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The EC2 network simulator: VPCs, subnets, internet gateways, route tables,
// Elastic IPs, NAT gateways, security groups and network interfaces, with the
// error codes and delays of docs/research/aws-ecs.md §5, §5.1 and §5.3. State
// lives in EC2State(); what ec2_state.go does not type lives in ec2Net.

// InternetGateway is a simulated internet gateway.
type InternetGateway struct {
	ID    string
	VPCID string // "" when detached
	Tags  map[string]string
}

// Route is one route of a route table. Target is "local", an igw-… or a nat-….
type Route struct {
	Destination string
	Target      string
}

// RouteTable is a simulated route table; Associations maps association id to
// subnet id ("" for the main association).
type RouteTable struct {
	ID, VPCID    string
	Main         bool
	MainAssocID  string
	Routes       []Route
	Associations map[string]string
	Tags         map[string]string
}

// Address is a simulated Elastic IP.
type Address struct {
	AllocationID, PublicIP string
	// NATID and ENIID are set while a NAT gateway holds the address.
	NATID, ENIID, AssociationID string
	Tags                        map[string]string
}

// NatGateway is a simulated public NAT gateway.
type NatGateway struct {
	ID, SubnetID, VPCID, AllocationID, ENIID string
	State                                    types.NatGatewayState
	FailureCode, FailureMessage              string
	Created, DeleteRequested                 time.Time
	// ReadyAt is when a pending gateway becomes available; GoneAt when a
	// deleting one becomes deleted; ForgetAt when a deleted one stops
	// being described at all.
	ReadyAt, GoneAt, ForgetAt time.Time
	Tags                      map[string]string
}

type ec2Net struct {
	IGWs        map[string]*InternetGateway
	RouteTables map[string]*RouteTable
	Addresses   map[string]*Address
	NATs        map[string]*NatGateway
	// natTokens maps CreateNatGateway ClientToken → gateway id (idempotency).
	natTokens map[string]string
}

// ec2NetState returns the network simulator's part of the EC2 state.
// Callers hold w.Mu.
func (w *World) ec2NetState() *ec2Net {
	s := w.EC2State()
	if n, ok := s.Extra.(*ec2Net); ok {
		return n
	}
	n := &ec2Net{IGWs: map[string]*InternetGateway{}, RouteTables: map[string]*RouteTable{},
		Addresses: map[string]*Address{}, NATs: map[string]*NatGateway{}, natTokens: map[string]string{}}
	s.Extra = n
	return n
}

// ec2Tick moves every time-driven EC2 state forward: released task ENIs are
// reaped, NAT gateways progress. Every EC2 handler calls it first.
func (w *World) ec2Tick() {
	w.ReapENIs()
	now := w.Clock.Now()
	n := w.ec2NetState()
	for id, g := range n.NATs {
		switch g.State {
		case types.NatGatewayStatePending:
			if !now.Before(g.ReadyAt) {
				if w.vpcHasIGW(g.VPCID) {
					g.State = types.NatGatewayStateAvailable
				} else {
					w.natFail(g)
				}
			}
		case types.NatGatewayStateDeleting:
			if !now.Before(g.GoneAt) {
				w.natGone(g)
			}
		case types.NatGatewayStateDeleted, types.NatGatewayStateFailed:
			if !now.Before(g.ForgetAt) {
				delete(n.NATs, id)
			}
		}
	}
}

// natGone finishes a NAT gateway's deletion: its ENI and the address
// association go away, routes to it become blackholes.
func (w *World) natGone(g *NatGateway) {
	g.State = types.NatGatewayStateDeleted
	g.ForgetAt = g.GoneAt.Add(w.timings.NATDeletedVisibleFor)
	w.natRelease(g)
}

func ec2Tags(m map[string]string) []types.Tag {
	if len(m) == 0 {
		return nil
	}
	out := make([]types.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// ec2TagsFor returns the tags of the TagSpecifications for resource type rt.
// A specification for a type the operation does not create is an error, as
// in EC2.
func ec2TagsFor(specs []types.TagSpecification, rt types.ResourceType) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		if s.ResourceType != rt {
			return nil, Err("InvalidParameterValue", fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", s.ResourceType))
		}
		for _, t := range s.Tags {
			k := aws.ToString(t.Key)
			if strings.HasPrefix(strings.ToLower(k), "aws:") {
				return nil, Err("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
			}
			out[k] = aws.ToString(t.Value)
		}
	}
	return out, nil
}

// ec2FilterFn answers the values of one filter name for one resource; ok=false
// means the filter name is not supported for this describe call.
type ec2FilterFn func(name string) (values []string, ok bool)

// ec2MatchFilters applies EC2 filter semantics: every filter must match; within
// a filter any value may match; values may use * and ? wildcards. tag:<key>
// and tag-key are answered from tags. An unknown filter name is an
// InvalidParameterValue error, as in EC2.
func ec2MatchFilters(filters []types.Filter, tags map[string]string, get ec2FilterFn) (bool, error) {
	for _, f := range filters {
		name := aws.ToString(f.Name)
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			if v, ok := tags[strings.TrimPrefix(name, "tag:")]; ok {
				have = []string{v}
			}
		case name == "tag-key":
			for k := range tags {
				have = append(have, k)
			}
		case name == "tag-value":
			for _, v := range tags {
				have = append(have, v)
			}
		default:
			vals, ok := get(name)
			if !ok {
				return false, Err("InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", name))
			}
			have = vals
		}
		if !ec2AnyMatch(f.Values, have) {
			return false, nil
		}
	}
	return true, nil
}

// ec2Describe is what an EC2 Describe call asks for: every requested id
// must exist (byID answers the type's NotFound error), then the resources
// are listed in id order, only the requested ones (all when none is), and
// only those matching every filter.
type ec2Describe[T any] struct {
	all map[string]*T
	ids []string
	// byID is nil where EC2 does not check the requested ids
	// (DescribeAvailabilityZones' ZoneNames only select).
	byID func(id string) (*T, error)
	// keep, when set, is the call's other selector (GroupNames, PublicIps).
	keep    func(*T) bool
	filters []types.Filter
	// tags is nil for a type without tags (network interfaces, zones).
	tags func(*T) map[string]string
	// attr answers a non-tag filter's values; ok=false means the filter
	// name is not supported for this type (ec2FilterFn).
	attr func(r *T, filter string) (values []string, ok bool)
}

// describeEC2 runs d and returns the SDK shape of each resource it selects
// (nil when none), or the first NotFound or InvalidParameterValue error.
func describeEC2[T, O any](d ec2Describe[T], shape func(*T) O) ([]O, error) {
	if d.byID != nil {
		for _, id := range d.ids {
			if _, err := d.byID(id); err != nil {
				return nil, err
			}
		}
	}
	var out []O
	for _, id := range sortedKeys(d.all) {
		r := d.all[id]
		if len(d.ids) > 0 && !slices.Contains(d.ids, id) {
			continue
		}
		if d.keep != nil && !d.keep(r) {
			continue
		}
		var tags map[string]string
		if d.tags != nil {
			tags = d.tags(r)
		}
		ok, err := ec2MatchFilters(d.filters, tags, func(name string) ([]string, bool) { return d.attr(r, name) })
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, shape(r))
		}
	}
	return out, nil
}

// ec2Find looks id up in all; a missing id is the type's NotFound code with
// EC2's message "The <kind> ID '<id>' does not exist".
func ec2Find[T any](all map[string]*T, id, code, kind string) (*T, error) {
	if r, ok := all[id]; ok {
		return r, nil
	}
	return nil, Err(code, fmt.Sprintf("The %s ID '%s' does not exist", kind, id))
}

// ec2DependencyViolation is EC2's refusal to delete a resource something
// still uses or that is still attached (docs/research/aws-ecs.md §5).
func ec2DependencyViolation(kind, id string) error {
	return Err("DependencyViolation", fmt.Sprintf("The %s '%s' has dependencies and cannot be deleted.", kind, id))
}

func ec2AnyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if ec2Wildcard(p, v) {
				return true
			}
		}
	}
	return false
}

// ec2Wildcard matches EC2 filter values: * any run, ? one character.
func ec2Wildcard(p, v string) bool {
	if p == "" {
		return v == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(v); i++ {
			if ec2Wildcard(p[1:], v[i:]) {
				return true
			}
		}
		return false
	case '?':
		return v != "" && ec2Wildcard(p[1:], v[1:])
	default:
		return v != "" && p[0] == v[0] && ec2Wildcard(p[1:], v[1:])
	}
}

func ec2One(v string) []string { return []string{v} }

func ec2BoolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// ec2ParseCIDR parses an IPv4 CIDR that must be the network address (EC2
// rejects host bits).
func ec2ParseCIDR(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return netip.Prefix{}, false
	}
	return p, true
}

func ec2CidrContains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// regionZoneLetters are the availability zones most accounts see in some
// regions, which have gaps: AWS retired or never opened some letters, and
// maps zone names to physical zones per account (so an account may also see
// other letters; deploybot must ask DescribeAvailabilityZones, never guess).
// us-west-1 has only b and c for most accounts, ap-northeast-1 a, c and d
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-regions-availability-zones.html).
var regionZoneLetters = map[string]string{
	"us-east-1":      "abcdef",
	"us-west-1":      "bc",
	"ap-northeast-1": "acd",
}

// azsOf returns the availability zones of the world's region, sorted:
// regionZoneLetters, else a to c.
func (w *World) azsOf() []string {
	letters, ok := regionZoneLetters[w.Region]
	if !ok {
		letters = "abc"
	}
	var out []string
	for _, l := range letters {
		out = append(out, w.Region+string(l))
	}
	return out
}

// ec2ResourceTags returns the tag map of any EC2 resource id, for
// CreateTags/DeleteTags and resource-level authorization; an unknown id is
// its type's NotFound error, as in EC2.
func (w *World) ec2ResourceTags(id string) (map[string]string, error) {
	switch {
	case strings.HasPrefix(id, "vpc-"):
		return ec2TagsOf(w.vpcByID(id))
	case strings.HasPrefix(id, "subnet-"):
		return ec2TagsOf(w.subnetByID(id))
	case strings.HasPrefix(id, "sg-"):
		return ec2TagsOf(w.sgByID(id))
	case strings.HasPrefix(id, "igw-"):
		return ec2TagsOf(w.igwByID(id))
	case strings.HasPrefix(id, "rtb-"):
		return ec2TagsOf(w.rtByID(id))
	case strings.HasPrefix(id, "eipalloc-"):
		return ec2TagsOf(w.addressByID(id))
	case strings.HasPrefix(id, "nat-"):
		// A deleted NAT gateway is still described but can no longer be tagged.
		if g, err := w.natByID(id); err != nil || g.State == types.NatGatewayStateDeleted {
			return nil, natNotFound(id)
		}
		return ec2TagsOf(w.natByID(id))
	}
	return nil, Err("InvalidID", fmt.Sprintf("The ID '%s' is not valid", id))
}

// ec2Tagged is an EC2 resource type with tags; tagMap returns the map
// itself, so CreateTags/DeleteTags change the resource.
type ec2Tagged interface{ tagMap() map[string]string }

func (v *VPC) tagMap() map[string]string             { return v.Tags }
func (sn *Subnet) tagMap() map[string]string         { return sn.Tags }
func (sg *SecurityGroup) tagMap() map[string]string  { return sg.Tags }
func (g *InternetGateway) tagMap() map[string]string { return g.Tags }
func (rt *RouteTable) tagMap() map[string]string     { return rt.Tags }
func (a *Address) tagMap() map[string]string         { return a.Tags }
func (g *NatGateway) tagMap() map[string]string      { return g.Tags }

func ec2TagsOf[T ec2Tagged](r T, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	return r.tagMap(), nil
}

// ec2TagMapsOf resolves the tag maps of all ids before CreateTags/DeleteTags
// changes any: one unknown id fails the whole call and changes nothing.
func (w *World) ec2TagMapsOf(ids []string) ([]map[string]string, error) {
	var maps []map[string]string
	for _, id := range ids {
		m, err := w.ec2ResourceTags(id)
		if err != nil {
			return nil, err
		}
		maps = append(maps, m)
	}
	return maps, nil
}

func ec2Need(v *string, field string) (string, error) {
	if aws.ToString(v) == "" {
		return "", Err("MissingParameter", fmt.Sprintf("The request must contain the parameter %s", field))
	}
	return *v, nil
}

// ec2NeedByID is a required id parameter that must name an existing
// resource: MissingParameter when it is absent, else byID's NotFound.
func ec2NeedByID[T any](v *string, field string, byID func(string) (*T, error)) (*T, error) {
	id, err := ec2Need(v, field)
	if err != nil {
		return nil, err
	}
	return byID(id)
}
