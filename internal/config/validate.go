package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// checker validates a decoded, defaulted Environment. It reports through the
// decoder so that decode and validation problems end up in one list, and it
// skips fields that failed to decode (already reported).
type checker struct {
	e *Environment
	d *decoder
	// missingReported: parents already reported as missing, so a missing
	// section is one problem rather than one per required key.
	missingReported map[string]bool
}

func validate(e *Environment, d *decoder) {
	c := &checker{e: e, d: d, missingReported: map[string]bool{}}
	c.name()
	c.aws()
	c.prefect()
	c.worker()
	c.flowRuns()
	c.network()
	c.serviceDiscovery()
	c.healthGate()
	c.tags()
}

// line is the line of path, or of its nearest ancestor present in the file,
// or 1.
func (c *checker) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.d.lines[p]; ok {
			return l
		}
	}
	return 1
}

func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func (c *checker) fail(path, format string, args ...any) {
	c.d.fail(c.line(path), path, format, args...)
}

// has says whether path holds a usable value the user wrote.
func (c *checker) has(path string) bool { return c.d.set[path] && !c.d.bad[path] }

// present says whether the key is in the file at all (even as null).
func (c *checker) present(path string) bool {
	_, ok := c.d.lines[path]
	return ok
}

// requiredKeys lists, per section, the keys a file must give.
var requiredKeys = map[string][]string{
	"":                   {"name", "aws", "prefect", "worker"},
	"aws":                {"account_id", "region", "plan_role_arn", "apply_role_arn"},
	"prefect":            {"api_url", "work_pool"},
	"worker":             {"image"},
	"worker.autoscaling": {"min", "max"},
	"network":            {}, // existing mode: vpc_id, subnet_ids (see existingNetwork)
}

// required reports path if it has no value and says whether it has one. A
// missing section is reported once, at the line of its parent.
func (c *checker) required(path string) bool {
	if c.d.bad[path] {
		return false
	}
	if c.d.set[path] {
		return true
	}
	if c.present(path) {
		c.fail(path, "is required; it has no value")
		return false
	}
	parent := parentPath(path)
	if parent != "" && !c.d.set[parent] {
		if c.d.bad[parent] || c.missingReported[parent] {
			return false
		}
		c.missingReported[parent] = true
		if c.present(parent) {
			c.fail(parent, "is required; it has no value (needs %s)", strings.Join(requiredKeys[parent], ", "))
		} else {
			c.fail(parent, "is required (a mapping with %s)", strings.Join(requiredKeys[parent], ", "))
		}
		return false
	}
	c.fail(path, "is required but missing")
	return false
}

var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

func (c *checker) name() {
	if !c.required("name") {
		return
	}
	n := c.e.Name
	switch {
	case len(n) > MaxNameLen:
		c.fail("name", "is %d characters; at most %d, so that every AWS name derived from it fits its limit (e.g. the IAM role deploybot-<name>-execution, 64 at most)", len(n), MaxNameLen)
	case strings.HasSuffix(n, "-"):
		c.fail("name", "must not end with a hyphen: it is a DNS label in the service discovery namespace")
	case !nameRE.MatchString(n):
		c.fail("name", "%q must be lowercase letters, digits and hyphens, starting with a letter: it names AWS resources (cluster deploybot-<name>, role deploybot-<name>-task, ...)", clip(n))
	}
}

var (
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$`)
	roleARNRE   = regexp.MustCompile(`^arn:([^:]*):iam::([^:]*):role/(.+)$`)
	roleNameRE  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	rolePathSeg = regexp.MustCompile(`^[\x21-\x2E\x30-\x7E]+$`) // printable ASCII but '/'
)

func (c *checker) aws() {
	accountOK := false
	if c.required("aws.account_id") {
		if accountRE.MatchString(c.e.AWS.AccountID) {
			accountOK = true
		} else {
			c.fail("aws.account_id", "must be the 12-digit AWS account id, as a quoted string")
		}
	}
	partition := ""
	if c.required("aws.region") {
		r := c.e.AWS.Region
		if p, ok := Regions[r]; ok {
			partition = p
		} else if !regionRE.MatchString(r) {
			c.fail("aws.region", "%q is not an AWS region name (like us-east-1)%s", clip(r), suggestFrom(r, regionNames()))
		} else if s := suggestFrom(r, regionNames()); s != "" {
			c.fail("aws.region", "unknown region %q%s", r, s)
		} else {
			c.fail("aws.region", "unknown region %q; deploybot knows %s", r, strings.Join(regionNames(), ", "))
		}
	}
	for _, key := range []string{"plan_role_arn", "apply_role_arn"} {
		path := "aws." + key
		if !c.required(path) {
			continue
		}
		arn := c.e.AWS.PlanRoleARN
		if key == "apply_role_arn" {
			arn = c.e.AWS.ApplyRoleARN
		}
		c.roleARN(path, arn, partition, accountOK)
	}
}

func (c *checker) roleARN(path, arn, regionPartition string, accountOK bool) {
	m := roleARNRE.FindStringSubmatch(arn)
	if m == nil {
		c.fail(path, "must be an IAM role ARN like arn:aws:iam::%s:role/deploybot-plan", exampleAccount(c.e.AWS.AccountID, accountOK))
		return
	}
	part, account, resource := m[1], m[2], m[3]
	switch {
	case part != "aws" && part != "aws-cn" && part != "aws-us-gov":
		c.fail(path, "partition %q is not aws, aws-cn or aws-us-gov", clip(part))
	case regionPartition != "" && part != regionPartition:
		c.fail(path, "is in partition %s but region %s is in %s", part, c.e.AWS.Region, regionPartition)
	case !accountRE.MatchString(account):
		c.fail(path, "account %q in the ARN must be 12 digits", clip(account))
	case accountOK && account != c.e.AWS.AccountID:
		c.fail(path, "is in account %s but aws.account_id is %s; deploybot only touches the file's account", account, c.e.AWS.AccountID)
	}
	segs := strings.Split(resource, "/")
	name, dirs := segs[len(segs)-1], segs[:len(segs)-1]
	if !roleNameRE.MatchString(name) {
		c.fail(path, "role name %q must be 1 to 64 of letters, digits and +=,.@_-", clip(name))
		return
	}
	for _, s := range dirs {
		if !rolePathSeg.MatchString(s) {
			c.fail(path, "role path /%s/ is not a valid IAM path", clip(strings.Join(dirs, "/")))
			return
		}
	}
}

func exampleAccount(account string, ok bool) string {
	if ok {
		return account
	}
	return "123456789012"
}

func regionNames() []string {
	names := make([]string, 0, len(Regions))
	for r := range Regions {
		names = append(names, r)
	}
	sort.Strings(names)
	return names
}

var (
	uuidPat        = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	cloudPathRE    = regexp.MustCompile(`^/api/accounts/` + uuidPat + `/workspaces/` + uuidPat + `$`)
	cloudUIPathRE  = regexp.MustCompile(`/account/(` + uuidPat + `)/workspaces?/(` + uuidPat + `)`)
	cloudAPIHost   = "api.prefect.cloud"
	cloudUIHost    = "app.prefect.cloud"
	cloudURLFormat = "https://api.prefect.cloud/api/accounts/<account-uuid>/workspaces/<workspace-uuid>"
)

// prefect checks the API URL without ever echoing it: a URL can carry
// credentials, and credentials never appear in output.
func (c *checker) prefect() {
	if c.required("prefect.api_url") {
		if msg := apiURLProblem(c.e.Prefect.APIURL); msg != "" {
			c.fail("prefect.api_url", "%s", msg)
		}
	}
	if !c.d.bad["prefect.auth"] {
		switch c.e.Prefect.Auth {
		case AuthAPIKey:
		case AuthBasic:
			if u, err := url.Parse(c.e.Prefect.APIURL); err == nil && (strings.EqualFold(u.Hostname(), cloudAPIHost) || cloudPathRE.MatchString(u.Path)) {
				c.fail("prefect.auth", "is basic, but prefect.api_url is a Prefect Cloud workspace, which takes an API key (Bearer): use auth: api_key, or point api_url at a self-hosted server that runs with PREFECT_SERVER_API_AUTH_STRING")
			}
		default:
			c.fail("prefect.auth", "%q is not one of %s: api_key (Prefect Cloud, or a server that takes API keys) or basic (a self-hosted server's PREFECT_SERVER_API_AUTH_STRING)", clip(c.e.Prefect.Auth), strings.Join(AuthModes, ", "))
		}
	}
	if c.required("prefect.work_pool") {
		if msg := workPoolProblem(c.e.Prefect.WorkPool); msg != "" {
			c.fail("prefect.work_pool", "%s", msg)
		} else if i := strings.IndexFunc(c.e.Prefect.WorkPool, notFamilyRune); i >= 0 {
			c.fail("prefect.work_pool", "%q cannot be in the pool's name: the worker names each flow run's task definition family prefect_<pool>_<deployment id>, "+
				"and ECS allows only letters, digits, hyphens and underscores in a family (prefect-aws does not clean the name: ecs_worker.py _get_or_generate_family discards its slugify), "+
				"so every flow run would fail to start; docs/research/prefect-flow-runs.md §A.7", c.e.Prefect.WorkPool[i:i+1])
		}
	}
}

// notFamilyRune is a rune an ECS task definition family may not hold
// (RegisterTaskDefinition: "Up to 255 letters (uppercase and lowercase),
// numbers, underscores, and hyphens are allowed").
func notFamilyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

func apiURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "is not a URL; use " + cloudURLFormat + " or a self-hosted server's https://HOST/api"
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.User != nil:
		return "must not contain credentials; the Prefect API key comes from the prefect-api-key secret and is stored in Secrets Manager"
	case u.Scheme == "http" && !isLoopback(host):
		return "must use https (http is allowed only for localhost)"
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("scheme %q is not https", clip(u.Scheme))
	case host == "":
		return "has no host"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query (?...)"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment (#...)"
	case strings.HasSuffix(u.Path, "/"):
		return "must not end with a slash; deploybot adds the API paths to it"
	case host == cloudUIHost:
		if m := cloudUIPathRE.FindStringSubmatch(u.Path); m != nil {
			return fmt.Sprintf("is the Prefect Cloud UI's address; the API URL is https://api.prefect.cloud/api/accounts/%s/workspaces/%s", m[1], m[2])
		}
		return "is the Prefect Cloud UI's address; the API URL is " + cloudURLFormat
	case host == cloudAPIHost:
		if u.Scheme != "https" || u.Port() != "" || !cloudPathRE.MatchString(u.Path) {
			return "a Prefect Cloud URL must be " + cloudURLFormat + " (docs/research/prefect-api.md §2.1)"
		}
	case isLoopback(host) && cloudPathRE.MatchString(u.Path):
		// A local stand-in for Prefect Cloud (the simulator behind
		// `deploybot demo`, a tunnel): the schema's pattern allows the
		// Cloud path on any host and the Prefect client treats it as Cloud.
	case !strings.HasSuffix(u.Path, "/api"):
		return "a self-hosted Prefect server's API URL ends with /api, like https://prefect.example.com/api (docs/research/prefect-api.md §2.2)"
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// workPoolProblem applies Prefect's own rules for pool names: the schema's
// pattern ^[^/%&><]+$ (docs/research/prefect-api.md §1.2) and the 403 for names
// starting with "prefect", which the server checks case-insensitively
// (§2.3). Control characters and surrounding spaces are refused too: they
// would make the name differ from what a person reads in the Prefect UI.
func workPoolProblem(pool string) string {
	if i := strings.IndexAny(pool, "/%&><"); i >= 0 {
		return fmt.Sprintf("%q is not allowed in a Prefect work pool name (Prefect's pattern is ^[^/%%&><]+$)", pool[i:i+1])
	}
	if strings.HasPrefix(strings.ToLower(pool), "prefect") {
		return `names starting with "prefect" are reserved by Prefect, which refuses them (403)`
	}
	if strings.TrimSpace(pool) != pool {
		return "must not start or end with spaces"
	}
	if strings.IndexFunc(pool, unicode.IsControl) >= 0 {
		return "must not contain control characters"
	}
	return ""
}

var (
	// The image reference grammar of distribution/reference (what Docker
	// and ECS accept): [domain[:port]/]path[:tag][@digest].
	imageDomain = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?`
	imagePath   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	imageRE     = regexp.MustCompile(`^(?:(` + imageDomain + `)/)?(` + imagePath + `(?:/` + imagePath + `)*)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`)
)

const imageExample = "like prefecthq/prefect-aws:latest or 123456789012.dkr.ecr.us-east-1.amazonaws.com/prefect-worker:1.4.0"

func imageProblem(image string) string {
	if strings.IndexFunc(image, unicode.IsSpace) >= 0 {
		return "must not contain spaces"
	}
	m := imageRE.FindStringSubmatch(image)
	if m == nil {
		name, _, _ := strings.Cut(image, "@")
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name = name[:i]
		}
		if _, repo, ok := strings.Cut(name, "/"); ok && strings.ToLower(repo) != repo || !ok && strings.ToLower(name) != name {
			return "repository names must be lowercase"
		}
		// The value is not echoed: a malformed reference may be a URL with
		// registry credentials in it.
		return "is not a valid image reference (" + imageExample + ")"
	}
	// distribution/reference reads an uppercase first component as a
	// registry host; nobody means a host called PrefectHQ.
	if d := m[1]; d != "" && !strings.ContainsAny(d, ".:") && d != "localhost" && strings.ToLower(d) != d {
		return fmt.Sprintf("repository names must be lowercase (%q would be read as a registry host)", d)
	}
	if n := len(m[1]) + len(m[2]) + 1; n > 256 {
		return "the image name is longer than 255 characters"
	}
	return ""
}

func (c *checker) worker() {
	if c.required("worker.image") {
		if msg := imageProblem(c.e.Worker.Image); msg != "" {
			c.fail("worker.image", "%s", msg)
		}
	}
	w := c.e.Worker
	c.fargateSize("worker", w.CPU, w.Memory)
	c.logRetention("worker.log_retention_days", w.LogRetentionDays)
	if c.has("worker.desired_count") {
		switch {
		case w.DesiredCount < 0:
			c.fail("worker.desired_count", "must be 0 or more")
		case w.DesiredCount > MaxWorkers:
			c.fail("worker.desired_count", "is %d; at most %d", w.DesiredCount, MaxWorkers)
		case w.DesiredCount == 0:
			c.fail("worker.desired_count", "is 0, so no worker would start and the health gate (health_gate.min_online_workers: %d) could never pass; to stop the worker, destroy the environment", c.e.HealthGate.MinOnlineWorkers)
		}
	}
	if w.Autoscaling != nil {
		c.autoscaling()
	}
	c.env("worker.env", c.e.Worker.Env, workerEnvReserved)
}

// fargateSize checks section's cpu and memory: a Fargate CPU size, and a
// memory size Fargate offers with it.
func (c *checker) fargateSize(section string, cpu, memory int) {
	cpuPath, memPath := section+".cpu", section+".memory"
	cpuOK := !c.d.bad[cpuPath]
	if cpuOK {
		if _, ok := FargateMemory[cpu]; !ok {
			cpuOK = false
			c.fail(cpuPath, "%d is not a Fargate CPU size; choose one of %s CPU units (1024 = 1 vCPU)", cpu, joinInts(FargateCPUs))
		}
	}
	if cpuOK && !c.d.bad[memPath] && !slices.Contains(FargateMemory[cpu], memory) {
		how := ""
		if !c.has(memPath) {
			how = " (the default)"
		}
		c.d.fail(c.lineOr(memPath, cpuPath), memPath, "Fargate does not offer %d MiB%s with %d CPU units; with %d choose %s MiB", memory, how, cpu, cpu, describeSizes(FargateMemory[cpu]))
	}
}

func (c *checker) logRetention(path string, days int) {
	if c.has(path) && !slices.Contains(LogRetentionDays, days) {
		c.fail(path, "CloudWatch Logs does not offer %d days; choose one of %s", days, joinInts(LogRetentionDays))
	}
}

// lineOr is the line of path if it is in the file, else of fallback.
func (c *checker) lineOr(path, fallback string) int {
	if l, ok := c.d.lines[path]; ok {
		return l
	}
	return c.line(fallback)
}

func (c *checker) autoscaling() {
	a := c.e.Worker.Autoscaling
	const rule = "the rule is autoscaling.min <= worker.desired_count <= autoscaling.max"
	minOK, maxOK := c.required("worker.autoscaling.min"), c.required("worker.autoscaling.max")
	if minOK && a.Min < 0 {
		c.fail("worker.autoscaling.min", "must be 0 or more")
		minOK = false
	}
	if maxOK {
		switch {
		case a.Max < 1:
			c.fail("worker.autoscaling.max", "must be at least 1")
			maxOK = false
		case a.Max > MaxWorkers:
			c.fail("worker.autoscaling.max", "is %d; at most %d", a.Max, MaxWorkers)
			maxOK = false
		}
	}
	// A desired_count already refused on its own is not compared again.
	desiredOK := !c.d.bad["worker.desired_count"] && c.e.Worker.DesiredCount >= 1 && c.e.Worker.DesiredCount <= MaxWorkers
	switch {
	case minOK && maxOK && a.Min > a.Max:
		c.fail("worker.autoscaling.min", "%d is greater than autoscaling.max %d; %s", a.Min, a.Max, rule)
	case minOK && desiredOK && c.e.Worker.DesiredCount < a.Min:
		c.d.fail(c.lineOr("worker.desired_count", "worker.autoscaling.min"), "worker.desired_count", "%d is below autoscaling.min %d; %s", c.e.Worker.DesiredCount, a.Min, rule)
	case maxOK && desiredOK && c.e.Worker.DesiredCount > a.Max:
		c.d.fail(c.lineOr("worker.desired_count", "worker.autoscaling.max"), "worker.desired_count", "%d is above autoscaling.max %d; %s", c.e.Worker.DesiredCount, a.Max, rule)
	}
	if c.has("worker.autoscaling.target_cpu_percent") && (a.TargetCPUPercent < 1 || a.TargetCPUPercent > 100) {
		c.fail("worker.autoscaling.target_cpu_percent", "must be between 1 and 100 (percent of the task's CPU)")
	}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// looksLikePrefectKey matches Prefect Cloud key prefixes (pnu_ user keys,
// pnb_ service accounts; docs/research/prefect-api.md §2.1).
func looksLikePrefectKey(v string) bool {
	return strings.HasPrefix(v, "pnu_") || strings.HasPrefix(v, "pnb_")
}

// envReserved says why a variable name is reserved in an env section ("":
// it is not).
type envReserved func(upper string) string

func workerEnvReserved(up string) string {
	switch {
	case up == "PREFECT_API_KEY":
		return "the worker gets the API key from the Secrets Manager secret deploybot/NAME/prefect-api-key, never from the file"
	case up == "PREFECT_API_URL":
		return "deploybot sets it from prefect.api_url"
	case strings.HasPrefix(up, "DEPLOYBOT_"):
		return "DEPLOYBOT_* variables are set by deploybot (DEPLOYBOT_WORK_POOL, DEPLOYBOT_WORKER_PREFIX)"
	case strings.HasPrefix(up, "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_"):
		return "deploybot sets the ECS observer's settings: it creates the observer's queue and names it (PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME)"
	}
	return ""
}

// flowRunEnvReserved: the worker gives every flow run its own Prefect
// settings (the API URL and credentials from its own, the PREFECT__* run
// identity: docs/research/prefect-flow-runs.md §A.6), which a default in
// the pool would override or be overwritten by.
func flowRunEnvReserved(up string) string {
	switch {
	case up == "PREFECT_API_KEY" || up == "PREFECT_API_AUTH_STRING":
		return "the worker gives each flow run its credentials from the secret deploybot/NAME/prefect-api-key (the pool's prefect_api_key_secret_arn), never from the file"
	case up == "PREFECT_API_URL":
		return "the worker gives each flow run its own PREFECT_API_URL, from prefect.api_url"
	case strings.HasPrefix(up, "PREFECT__"):
		return "PREFECT__* variables carry the run's identity; the worker sets them for each flow run"
	}
	return ""
}

func (c *checker) env(section string, env map[string]string, reserved envReserved) {
	role := ""
	if section == "flow_runs.env" {
		role = "the flow-run task role (deploybot-NAME-flow-task, with flow_runs.task_role_policy_arns and task_role_policy)"
	}
	for _, k := range c.keysInFileOrder(section, env) {
		path := childPath(section, k)
		if c.d.bad[path] {
			continue
		}
		up := strings.ToUpper(k)
		switch why := reserved(up); {
		case !envNameRE.MatchString(k):
			c.fail(path, "%q is not an environment variable name (letters, digits and _, not starting with a digit)", clip(k))
		case why != "":
			c.fail(path, "is reserved: %s", strings.ReplaceAll(why, "NAME", c.e.Name))
		case looksLikePrefectKey(env[k]):
			c.fail(path, "looks like a Prefect API key; keys must not live in the repository (pass it as the prefect-api-key secret)")
		default:
			// Values in this file are committed to git and written into the
			// task definition (or the pool's job template) in plain text
			// (credentials.go).
			if what, advice, ok := credentialIn(k, env[k]); ok {
				if role != "" {
					advice = strings.ReplaceAll(advice, "the worker's task role (deploybot-NAME-task)", role)
				}
				c.fail(path, "looks like %s: %s", what, strings.ReplaceAll(advice, "NAME", c.e.Name))
			}
		}
	}
}

var (
	vpcIDRE    = regexp.MustCompile(`^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetIDRE = regexp.MustCompile(`^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	sgIDRE     = regexp.MustCompile(`^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
)

var (
	managedOnly  = []string{"cidr", "availability_zones", "nat"}
	existingOnly = []string{"vpc_id", "subnet_ids", "assign_public_ip", "security_group_ids"}
)

func (c *checker) network() {
	if c.d.bad["network.mode"] || c.d.bad["network"] {
		return
	}
	switch c.e.Network.Mode {
	case "managed":
		c.managedNetwork()
	case "existing":
		c.existingNetwork()
	default:
		c.fail("network.mode", "must be managed or existing, not %q%s", clip(c.e.Network.Mode), suggestFrom(c.e.Network.Mode, NetworkModes))
	}
}

func (c *checker) managedNetwork() {
	for _, k := range existingOnly {
		if c.present("network." + k) {
			c.fail("network."+k, "applies only to network.mode: existing; a managed network creates its own VPC, subnets and security group")
		}
	}
	n := c.e.Network
	nat := !c.d.bad["network.nat"]
	if nat && !slices.Contains(NATModes, n.NAT) {
		nat = false
		c.fail("network.nat", "must be none, single or per-az, not %q%s", clip(n.NAT), suggestFrom(n.NAT, NATModes))
	}
	azsOK := !c.d.bad["network.availability_zones"]
	if azsOK && (n.AvailabilityZones < MinAZs || n.AvailabilityZones > MaxAZs) {
		azsOK = false
		c.fail("network.availability_zones", "must be between %d and %d (ECS spreads the worker's tasks over them)", MinAZs, MaxAZs)
	}
	if c.d.bad["network.cidr"] {
		return
	}
	p, err := netip.ParsePrefix(n.CIDR)
	switch {
	case err != nil:
		c.fail("network.cidr", "%q is not an IPv4 CIDR like 10.0.0.0/16", clip(n.CIDR))
		return
	case !p.Addr().Is4():
		c.fail("network.cidr", "must be an IPv4 CIDR like 10.0.0.0/16")
		return
	case p != p.Masked():
		c.fail("network.cidr", "%s has host bits set; the network address is %s", n.CIDR, p.Masked())
		return
	case p.Bits() < MinCIDRPrefix || p.Bits() > MaxCIDRPrefix:
		c.fail("network.cidr", "prefix /%d is outside /%d to /%d: AWS allows VPCs of /16 to /28, and the subnets are carved at prefix+%d, at least /28", p.Bits(), MinCIDRPrefix, MaxCIDRPrefix, SubnetBits)
		return
	case !isRFC1918(p):
		c.fail("network.cidr", "%s is not a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918)", n.CIDR)
		return
	}
	if !azsOK {
		return
	}
	if _, _, err := SubnetCIDRs(n.CIDR, n.AvailabilityZones); err != nil {
		c.fail("network.cidr", "%v", err)
		return
	}
	// Every task has its own ENI, and a rolling deployment runs old and new
	// tasks side by side (ECS maximumPercent 200), so the worker subnets
	// must hold twice the most workers there can be.
	workers, ok := c.maxWorkers()
	if !ok || !nat {
		return
	}
	perSubnet := usableSubnetAddresses(p.Bits() + SubnetBits)
	capacity := perSubnet * n.AvailabilityZones
	if capacity < 2*workers {
		where := "private"
		if n.NAT == "none" {
			where = "public"
		}
		c.fail("network.cidr", "%s is too small for %d workers: its %d %s subnets (/%d) hold %d task addresses, and a deployment can run %d tasks at once (old and new side by side); use a shorter prefix or fewer workers", n.CIDR, workers, n.AvailabilityZones, where, p.Bits()+SubnetBits, capacity, 2*workers)
	}
}

func isRFC1918(p netip.Prefix) bool {
	for _, r := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} {
		private := netip.MustParsePrefix(r)
		if private.Bits() <= p.Bits() && private.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// maxWorkers is the most workers the service can run: autoscaling.max, or
// desired_count without autoscaling. ok is false when those are broken.
func (c *checker) maxWorkers() (int, bool) {
	if a := c.e.Worker.Autoscaling; a != nil {
		if !c.has("worker.autoscaling.max") || a.Max < 1 || a.Max > MaxWorkers {
			return 0, false
		}
		return a.Max, true
	}
	d := c.e.Worker.DesiredCount
	if c.d.bad["worker.desired_count"] || d < 0 || d > MaxWorkers {
		return 0, false
	}
	return d, true
}

func (c *checker) existingNetwork() {
	for _, k := range managedOnly {
		if c.present("network." + k) {
			c.fail("network."+k, "applies only to network.mode: managed; with existing, the VPC and subnets are yours")
		}
	}
	n := c.e.Network
	if c.requiredExisting("network.vpc_id") && !vpcIDRE.MatchString(n.VPCID) {
		c.fail("network.vpc_id", "%q is not a VPC id (vpc- and 8 or 17 hex digits)", clip(n.VPCID))
	}
	if c.requiredExisting("network.subnet_ids") {
		switch {
		case len(n.SubnetIDs) == 0:
			c.fail("network.subnet_ids", "needs at least one subnet id")
		case len(n.SubnetIDs) > MaxSubnets:
			c.fail("network.subnet_ids", "has %d subnets; ECS accepts at most %d", len(n.SubnetIDs), MaxSubnets)
		}
		c.idList("network.subnet_ids", n.SubnetIDs, subnetIDRE, "subnet id (subnet- and 8 or 17 hex digits)")
	}
	if c.has("network.security_group_ids") {
		switch {
		case len(n.SecurityGroupIDs) == 0:
			c.fail("network.security_group_ids", "is empty; leave it out and deploybot creates the worker security group deploybot-%s-worker", c.e.Name)
		case len(n.SecurityGroupIDs) > MaxSecurityGroups:
			c.fail("network.security_group_ids", "has %d security groups; ECS accepts at most %d", len(n.SecurityGroupIDs), MaxSecurityGroups)
		}
		c.idList("network.security_group_ids", n.SecurityGroupIDs, sgIDRE, "security group id (sg- and 8 or 17 hex digits)")
	}
}

// requiredExisting is required for keys only existing mode needs: a missing
// one is reported at the network section's line, and the message says why.
func (c *checker) requiredExisting(path string) bool {
	if c.d.bad[path] {
		return false
	}
	if c.d.set[path] {
		return true
	}
	c.fail(path, "is required with network.mode: existing")
	return false
}

func (c *checker) idList(path string, ids []string, re *regexp.Regexp, what string) {
	first := map[string]int{}
	for i, id := range ids {
		item := fmt.Sprintf("%s[%d]", path, i)
		if c.d.bad[item] {
			continue
		}
		if !re.MatchString(id) {
			c.fail(item, "%q is not a %s", clip(id), what)
			continue
		}
		if l, dup := first[id]; dup {
			c.fail(item, "%s is listed twice (first at line %d)", id, l)
			continue
		}
		first[id] = c.line(item)
	}
}

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c *checker) serviceDiscovery() {
	if !c.has("service_discovery.namespace") {
		// The default derives from a valid name and is valid by
		// construction; an invalid name is already reported.
		return
	}
	ns := c.e.ServiceDiscovery.Namespace
	if msg := dnsNameProblem(ns); msg != "" {
		c.fail("service_discovery.namespace", "%s", msg)
	}
}

// dnsNameProblem checks a Cloud Map private DNS namespace name: a DNS name of
// at least two labels, at most 253 characters. Lowercase only, because DNS
// compares names case-insensitively and a plan must not show a case change.
func dnsNameProblem(ns string) string {
	if len(ns) > 253 {
		return fmt.Sprintf("is %d characters; a DNS name has at most 253", len(ns))
	}
	if strings.HasSuffix(ns, ".") {
		return "must not end with a dot"
	}
	labels := strings.Split(ns, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("%q must be a DNS name with at least two labels, like staging.prefect.internal", clip(ns))
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return fmt.Sprintf("label %q must be 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen", clip(l))
		}
	}
	return ""
}

func (c *checker) healthGate() {
	g := c.e.HealthGate
	if !c.d.bad["health_gate.timeout"] && (g.Timeout < MinGateTimeout || g.Timeout > MaxGateTimeout) {
		c.fail("health_gate.timeout", "%s is outside 30s to 1h: a worker needs time to pull its image and start, and a stuck deploy must not hold the lock for hours", g.Timeout)
	}
	if c.d.bad["health_gate.min_online_workers"] {
		return
	}
	if g.MinOnlineWorkers < 1 {
		c.fail("health_gate.min_online_workers", "must be at least 1: the gate proves that a worker of the new revision is online")
		return
	}
	workers, ok := c.maxWorkers()
	if ok && workers >= 1 && g.MinOnlineWorkers > workers {
		source := "worker.desired_count"
		if c.e.Worker.Autoscaling != nil {
			source = "worker.autoscaling.max"
		}
		c.fail("health_gate.min_online_workers", "%d is more than the %d workers the service can run (%s), so the gate could never pass", g.MinOnlineWorkers, workers, source)
	}
}

// tagCharsRE: the characters every AWS service deploybot tags accepts
// (Tagging AWS resources, "Tag naming limits and requirements"): letters,
// digits, spaces, and _ . : / = + - @.
var tagCharsRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func (c *checker) tags() {
	tags := c.e.Tags
	if len(tags) > MaxUserTags {
		c.fail("tags", "has %d tags; at most %d: AWS allows 50 per resource and deploybot adds deploybot:environment, deploybot:stack, managed-by and, on EC2, Name", len(tags), MaxUserTags)
	}
	firstFold := map[string]string{}
	for _, k := range c.keysInFileOrder("tags", tags) {
		path := childPath("tags", k)
		if c.d.bad[path] {
			continue
		}
		v := tags[k]
		lower := strings.ToLower(k)
		switch {
		case k == "":
			c.fail(path, "tag keys must not be empty")
		case len([]rune(k)) > MaxTagKey:
			c.fail(path, "key is %d characters; AWS allows at most %d", len([]rune(k)), MaxTagKey)
		case strings.HasPrefix(lower, "aws:"):
			c.fail(path, "keys starting with aws: are reserved by AWS")
		case strings.HasPrefix(lower, "deploybot:") || lower == "managed-by":
			c.fail(path, "is reserved: deploybot sets deploybot:environment, deploybot:stack and managed-by itself")
		case k == "Name":
			c.fail(path, "is reserved: deploybot sets the EC2 Name tag (deploybot-<name>-<part>)")
		case !tagCharsRE.MatchString(k):
			c.fail(path, "key %q may use only letters, digits, spaces and _ . : / = + - @", clip(k))
		case len([]rune(v)) > MaxTagValue:
			c.fail(path, "value is %d characters; AWS allows at most %d", len([]rune(v)), MaxTagValue)
		case looksLikePrefectKey(v):
			c.fail(path, "value looks like a Prefect API key; keys must not live in the repository")
		case !tagCharsRE.MatchString(v):
			c.fail(path, "value may use only letters, digits, spaces and _ . : / = + - @")
		default:
			if other, dup := firstFold[lower]; dup {
				c.fail(path, "differs from tag %q only by case; IAM treats tag keys case-insensitively", other)
			} else {
				firstFold[lower] = k
			}
		}
	}
}

// keysInFileOrder returns m's keys in the order the file has them, so that
// of two clashing keys the later one is reported.
func (c *checker) keysInFileOrder(path string, m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := c.d.lines[childPath(path, keys[i])], c.d.lines[childPath(path, keys[j])]
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// describeSizes says "512, 1024 or 2048" or "8192 to 30720 in steps of 1024".
func describeSizes(xs []int) string {
	if len(xs) <= 3 {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
	}
	return fmt.Sprintf("%d to %d in steps of %d", xs[0], xs[len(xs)-1], xs[1]-xs[0])
}
