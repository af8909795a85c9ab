// Package cost estimates what a plan changes in the monthly AWS bill, from a
// price table checked into the repository (prices.json: On-Demand list
// prices per region, each with its source URL and the date it was read).
//
// It prices what the stack bills by the hour or the month: Fargate vCPU and
// memory hours (Linux/x86 and ARM), NAT gateway hours, public IPv4
// addresses, Secrets Manager secrets, the Route 53 hosted zone behind a
// Cloud Map private DNS namespace, Cloud Map service instances and the
// CloudWatch alarms of a target-tracking policy. Charges that depend on
// usage (data processed, log ingestion, API requests) are named as
// usage-based, never guessed; a price or a region missing from the table,
// and a resource kind the table does not know, are reported as unknown.
//
// It works from the plan's data only (kinds and attribute values before
// and after, plan.Change.Before/After), so the terminal plan, the PR
// comment, the job summary and the JSON plan show the same estimate.
package cost

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/deploybot/deploybot/internal/plan"
)

//go:embed prices.json
var pricesJSON []byte

// Table is the price table.
type Table struct {
	Currency string `json:"currency"`
	// Retrieved is the date (YYYY-MM-DD) the prices were read from their sources.
	Retrieved     string                        `json:"retrieved"`
	HoursPerMonth float64                       `json:"hours_per_month"`
	Sources       map[string]Source             `json:"sources"`
	Regions       map[string]map[string]float64 `json:"-"`
	Kinds         struct {
		// Free kinds cost nothing by themselves.
		Free []string `json:"free"`
		// Usage names charges that depend on usage, by kind (or
		// kind.attribute for a setting that turns one on).
		Usage map[string]string `json:"usage"`
	} `json:"kinds"`
}

// Source is where a group of prices comes from.
type Source struct {
	URL       string `json:"url"`
	OfferFile string `json:"offer_file,omitempty"`
	What      string `json:"what"`
}

// Price keys in a region's table.
const (
	FargateVCPUx86 = "fargate_vcpu_hour_linux_x86"
	FargateGBx86   = "fargate_gb_hour_linux_x86"
	FargateVCPUArm = "fargate_vcpu_hour_linux_arm"
	FargateGBArm   = "fargate_gb_hour_linux_arm"
	NATHour        = "nat_gateway_hour"
	IPv4Hour       = "public_ipv4_hour"
	SecretMonth    = "secret_month"
	ZoneMonth      = "hosted_zone_month"
	CloudMapMonth  = "cloudmap_instance_month"
	AlarmMonth     = "alarm_month"
)

var (
	defaultOnce  sync.Once
	defaultTable *Table
	defaultErr   error
)

// Default returns the table in prices.json.
func Default() (*Table, error) {
	defaultOnce.Do(func() { defaultTable, defaultErr = Parse(pricesJSON) })
	return defaultTable, defaultErr
}

// Parse reads a price table. A region's "evidence" (how its prices were
// checked) is documentation and skipped; every other value must be a price.
func Parse(b []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("read the price table: %w", err)
	}
	var raw struct {
		Regions map[string]map[string]json.RawMessage `json:"regions"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("read the price table's regions: %w", err)
	}
	t.Regions = map[string]map[string]float64{}
	for region, prices := range raw.Regions {
		t.Regions[region] = map[string]float64{}
		for k, v := range prices {
			if k == "evidence" {
				continue
			}
			var f float64
			if err := json.Unmarshal(v, &f); err != nil || f < 0 {
				return nil, fmt.Errorf("price table: %s %s: %s is not a price", region, k, v)
			}
			t.Regions[region][k] = f
		}
	}
	if t.HoursPerMonth <= 0 || t.Retrieved == "" {
		return nil, fmt.Errorf("price table: hours_per_month and retrieved are required")
	}
	return &t, nil
}

// Estimate is what a plan changes in the monthly bill.
type Estimate struct {
	Region    string `json:"region"`
	Currency  string `json:"currency"`
	Retrieved string `json:"prices_retrieved"`
	// Delta is the sum of the priced lines, per month.
	Delta float64 `json:"monthly_delta"`
	// Lines are the priced changes, biggest first.
	Lines []Line `json:"lines"`
	// Unknown are billed things whose price the table does not have: the
	// estimate leaves them out, so Delta is then incomplete.
	Unknown []string `json:"unknown"`
	// UsageBased are charges this plan starts that depend on usage.
	UsageBased []string `json:"usage_based"`
}

// Line is one priced change, e.g. "1 NAT gateway" at +32.85 per month.
type Line struct {
	What  string  `json:"what"`
	Delta float64 `json:"monthly_delta"`
}

// Changes says whether the estimate has anything to say.
func (e *Estimate) Changes() bool {
	return len(e.Lines) > 0 || len(e.Unknown) > 0 || len(e.UsageBased) > 0
}

// Money formats a monthly amount with its sign: "+$32.85", "-$3.65",
// "$0.00". Amounts under a cent are shown with more digits so that a small
// change is not shown as nothing.
func Money(v float64) string {
	sign := "+"
	if v < 0 {
		sign = "-"
	}
	a := math.Abs(v)
	if a < 0.005 {
		return "$0.00"
	}
	return sign + "$" + strconv.FormatFloat(a, 'f', 2, 64)
}

// Text is the estimate in one line, e.g.
// "≈ +$36.50/month: +$32.85 1 NAT gateway; +$3.65 1 public IPv4 address".
func (e *Estimate) Text() string {
	var parts []string
	for _, l := range e.Lines {
		parts = append(parts, Money(l.Delta)+" "+l.What)
	}
	s := "≈ " + Money(e.Delta) + "/month"
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	if len(e.Unknown) > 0 {
		s += "; not priced (unknown): " + strings.Join(e.Unknown, "; ")
	}
	if len(e.UsageBased) > 0 {
		s += "; usage-based, not estimated: " + strings.Join(e.UsageBased, "; ")
	}
	return s
}

// Of estimates p with the default table.
func Of(p *plan.Plan) Estimate {
	t, err := Default()
	if err != nil {
		return Estimate{Region: p.Region, Unknown: []string{err.Error()}}
	}
	return t.Estimate(p)
}

// Estimate estimates what applying p changes in the monthly bill.
func (t *Table) Estimate(p *plan.Plan) Estimate {
	e := Estimate{Region: p.Region, Currency: t.Currency, Retrieved: t.Retrieved, Lines: []Line{}, Unknown: []string{}, UsageBased: []string{}}
	prices, regionKnown := t.Regions[p.Region]
	before, after := measure(p, false), measure(p, true)

	unknown := map[string]bool{}
	addUnknown := func(s string) {
		if !unknown[s] {
			unknown[s] = true
			e.Unknown = append(e.Unknown, s)
		}
	}
	price := func(key, what string) (float64, bool) {
		v, ok := prices[key]
		if !ok {
			if !regionKnown {
				addUnknown(fmt.Sprintf("%s (the price table has no prices for %s)", what, p.Region))
			} else {
				addUnknown(fmt.Sprintf("%s (no %s price for %s in the table)", what, key, p.Region))
			}
		}
		return v, ok
	}
	hourly := func(key string, n int, what string) {
		if n == 0 {
			return
		}
		if v, ok := price(key, what); ok {
			e.Lines = append(e.Lines, Line{What: what, Delta: float64(n) * v * t.HoursPerMonth})
		}
	}
	monthly := func(key string, n int, what string) {
		if n == 0 {
			return
		}
		if v, ok := price(key, what); ok {
			e.Lines = append(e.Lines, Line{What: what, Delta: float64(n) * v})
		}
	}

	// Fargate, one line per service whose tasks change.
	for _, addr := range unionKeys(before.services, after.services) {
		b, a := before.services[addr], after.services[addr]
		if b == a {
			continue
		}
		what := fargateWhat(b, a)
		if (b.count > 0 && !b.sized) || (a.count > 0 && !a.sized) {
			addUnknown(what + " (the task size is not in the plan)")
			continue
		}
		cost := func(s service) (float64, bool) {
			if s.count == 0 {
				return 0, true
			}
			vk, gk := FargateVCPUx86, FargateGBx86
			if s.arm {
				vk, gk = FargateVCPUArm, FargateGBArm
			}
			v, ok1 := price(vk, what)
			g, ok2 := price(gk, what)
			return float64(s.count) * (s.vcpu*v + s.gb*g) * t.HoursPerMonth, ok1 && ok2
		}
		cb, ok1 := cost(b)
		ca, ok2 := cost(a)
		if ok1 && ok2 {
			e.Lines = append(e.Lines, Line{What: what, Delta: ca - cb})
		}
	}
	hourly(NATHour, after.nat-before.nat, countWhat(after.nat-before.nat, "NAT gateway", "NAT gateways"))
	// The tasks' own addresses and the Elastic IPs apart: a NAT gateway
	// moves the tasks to private subnets, and both lines say so.
	taskIPs := after.taskIPv4 - before.taskIPv4
	eips := (after.ipv4 - after.taskIPv4) - (before.ipv4 - before.taskIPv4)
	hourly(IPv4Hour, eips, countWhat(eips, "public IPv4 address (Elastic IP)", "public IPv4 addresses (Elastic IPs)"))
	hourly(IPv4Hour, taskIPs, countWhat(taskIPs, "public IPv4 address (the worker tasks' own)", "public IPv4 addresses (the worker tasks' own)"))
	monthly(SecretMonth, after.secrets-before.secrets, countWhat(after.secrets-before.secrets, "Secrets Manager secret", "Secrets Manager secrets"))
	monthly(ZoneMonth, after.zones-before.zones, countWhat(after.zones-before.zones, "Route 53 private hosted zone (the Cloud Map namespace's)", "Route 53 private hosted zones (the Cloud Map namespaces')"))
	monthly(CloudMapMonth, after.instances-before.instances, countWhat(after.instances-before.instances, "Cloud Map service instance (one per task)", "Cloud Map service instances (one per task)"))
	monthly(AlarmMonth, after.alarms-before.alarms, countWhat(after.alarms-before.alarms, "CloudWatch alarm (target tracking)", "CloudWatch alarms (target tracking)"))

	sort.SliceStable(e.Lines, func(i, j int) bool { return math.Abs(e.Lines[i].Delta) > math.Abs(e.Lines[j].Delta) })
	for _, l := range e.Lines {
		e.Delta += l.Delta
	}

	// What the table does not know, and the usage-based charges this plan
	// starts (a charge that already runs is not news).
	free := map[string]bool{}
	for _, k := range t.Kinds.Free {
		free[k] = true
	}
	usageSeen := map[string]bool{}
	addUsage := func(key string) {
		if u, ok := t.Kinds.Usage[key]; ok && !usageSeen[u] {
			usageSeen[u] = true
			e.UsageBased = append(e.UsageBased, u)
		}
	}
	for _, c := range p.Changes {
		if c.Action == plan.Conflict {
			continue
		}
		if !priced[c.Kind] && !free[c.Kind] {
			if _, usage := t.Kinds.Usage[c.Kind]; !usage && c.Action != plan.NoOp {
				addUnknown(fmt.Sprintf("%s (kind %s is not in the price table)", c.Address, c.Kind))
			}
		}
		if c.Action != plan.Create && c.Action != plan.Replace {
			continue
		}
		addUsage(c.Kind)
		for path, v := range c.After {
			if v == "enabled" || v == "ENABLED" || v == "true" {
				addUsage(c.Kind + "." + path)
			}
		}
		if c.Kind == "ecs_service" && c.After["network.assign_public_ip"] == "ENABLED" || c.Kind == "nat_gateway" {
			addUsage("data_transfer")
		}
	}
	return e
}

// priced are the kinds measure bills.
var priced = map[string]bool{
	"ecs_service": true, "nat_gateway": true, "eip": true, "secret": true,
	"service_discovery_namespace": true, "service_discovery_service": true, "autoscaling_policy": true,
}

// service is the Fargate capacity of one ECS service.
type service struct {
	count    int // tasks (autoscaling: the minimum)
	countMax int // autoscaling's maximum, 0 without autoscaling
	vcpu, gb float64
	arm      bool
	sized    bool // the task size was found in the plan
}

// usage is what one side (before or after) of a plan bills.
type usage struct {
	services  map[string]service
	nat, ipv4 int
	taskIPv4  int // of ipv4: the tasks' own public IPs
	secrets   int
	zones     int
	instances int
	alarms    int
}

func measure(p *plan.Plan, after bool) usage {
	u := usage{services: map[string]service{}}
	side := func(c plan.Change) map[string]string {
		if c.Action == plan.Conflict {
			return nil
		}
		if after {
			return c.After
		}
		return c.Before
	}
	// Task sizes by family, and the autoscaling range, of this side.
	type size struct {
		vcpu, gb float64
		arm      bool
	}
	sizes := map[string]size{}
	var onlySize *size
	nTaskDefs := 0
	minCap, maxCap := -1, 0
	for _, c := range p.Changes {
		a := side(c)
		if a == nil {
			continue
		}
		switch c.Kind {
		case "task_definition":
			cpu, err1 := strconv.Atoi(a["cpu"])
			mem, err2 := strconv.Atoi(a["memory"])
			if err1 != nil || err2 != nil {
				continue
			}
			s := size{vcpu: float64(cpu) / 1024, gb: float64(mem) / 1024}
			for k, v := range a {
				if strings.HasSuffix(k, "cpu_architecture") && strings.Contains(strings.ToUpper(v), "ARM") {
					s.arm = true
				}
			}
			sizes[c.Name] = s
			nTaskDefs++
			onlySize = &s
		case "autoscaling_target":
			if n, err := strconv.Atoi(a["min_capacity"]); err == nil {
				minCap = n
			}
			if n, err := strconv.Atoi(a["max_capacity"]); err == nil {
				maxCap = n
			}
		}
	}
	for _, c := range p.Changes {
		a := side(c)
		if a == nil {
			continue
		}
		switch c.Kind {
		case "ecs_service":
			if a["launch_type"] != "" && a["launch_type"] != "FARGATE" {
				continue
			}
			s := service{count: 1}
			if n, err := strconv.Atoi(a["desired_count"]); err == nil {
				s.count = n
			} else if minCap >= 0 {
				s.count, s.countMax = minCap, maxCap
			}
			if sz, ok := sizes[familyOf(a["task_definition"])]; ok {
				s.vcpu, s.gb, s.arm, s.sized = sz.vcpu, sz.gb, sz.arm, true
			} else if nTaskDefs == 1 {
				s.vcpu, s.gb, s.arm, s.sized = onlySize.vcpu, onlySize.gb, onlySize.arm, true
			}
			u.services[c.Address] = s
			if a["network.assign_public_ip"] == "ENABLED" {
				u.ipv4 += s.count
				u.taskIPv4 += s.count
			}
			if a["service_registry"] != "" {
				u.instances += s.count
			}
		case "nat_gateway":
			u.nat++
		case "eip":
			u.ipv4++
		case "secret":
			u.secrets++
		case "service_discovery_namespace":
			if a["type"] == "" || a["type"] == "DNS_PRIVATE" || a["type"] == "DNS_PUBLIC" {
				u.zones++
			}
		case "autoscaling_policy":
			if a["policy_type"] == "TargetTrackingScaling" {
				u.alarms += 2
			}
		}
	}
	return u
}

// familyOf reads FAMILY from a task definition ARN
// (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION).
func familyOf(arn string) string {
	_, rest, ok := strings.Cut(arn, ":task-definition/")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, ':'); i > 0 {
		return rest[:i]
	}
	return rest
}

func fargateWhat(b, a service) string {
	arch := func(s service) string {
		if s.arm {
			return "Linux/ARM"
		}
		return "Linux/x86"
	}
	size := func(s service) string {
		return trimFloat(s.vcpu) + " vCPU / " + trimFloat(s.gb) + " GB"
	}
	tasks := func(s service) string {
		if s.countMax > s.count {
			return fmt.Sprintf("%d–%d tasks, estimated at %d", s.count, s.countMax, s.count)
		}
		return countWhat(s.count, "task", "tasks")
	}
	switch {
	case b.count == 0:
		return fmt.Sprintf("Fargate %s × %s (%s)", size(a), tasks(a), arch(a))
	case a.count == 0:
		return fmt.Sprintf("Fargate %s × %s (%s), removed", size(b), tasks(b), arch(b))
	}
	sz := size(a)
	if size(b) != size(a) {
		sz = size(b) + " → " + size(a)
	}
	n := tasks(a)
	if tasks(b) != tasks(a) {
		n = tasks(b) + " → " + tasks(a)
	}
	ar := arch(a)
	if arch(b) != arch(a) {
		ar = arch(b) + " → " + arch(a)
	}
	return fmt.Sprintf("Fargate %s × %s (%s)", sz, n, ar)
}

// countWhat is "1 NAT gateway", "2 NAT gateways", "-1 NAT gateway" as a
// count of what changes, without its sign (the amount carries it).
func countWhat(n int, one, many string) string {
	if n < 0 {
		n = -n
	}
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func trimFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func unionKeys(a, b map[string]service) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]service{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
