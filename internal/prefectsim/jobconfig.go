package prefectsim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// A flow run's ECS job configuration, resolved as prefect-aws's worker
// resolves it (docs/research/prefect-flow-runs.md §A.4; base =
// src/prefect/workers/base.py, ew = prefect_aws/workers/ecs_worker.py):
//  1. the non-null top-level variable defaults of the pool's template,
//     overlaid with the deployment's job variables, then the run's (env
//     dicts merge, "env.FOO" keys expand; base:175-243);
//  2. the job configuration template filled in, a placeholder with no value
//     dropping its key (src/prefect/utilities/templating/__init__.py);
//  3. prepare_for_flow_run: the run's environment starts from the worker's
//     own PREFECT_ settings, its key included, plus the run's identity
//     (base:396-529); a *_secret_arn removes that credential from it, and
//     prefect_api_key_secret_arn without PREFECT_API_KEY is a KeyError
//     (ew:360-376);
//  4. the model validators of ECSJobConfiguration (ew:378-474).
// Any error becomes the run's CRASHED message "Failed to submit flow run to
// infrastructure: <type>: <message>" (base:1644-1653).

// submitError is an exception as Python names and words it.
type submitError struct{ typ, msg string }

func (e *submitError) Error() string { return e.typ + ": " + e.msg }

func pyErr(typ, format string, args ...any) error {
	return &submitError{typ: typ, msg: fmt.Sprintf(format, args...)}
}

// validationError is pydantic's ValidationError of ECSJobConfiguration for
// one model validator.
func validationError(msg string) error {
	return pyErr("ValidationError", "1 validation error for ECSJobConfiguration\n  Value error, %s [type=value_error, input_type=dict]", msg)
}

// notSet marks a placeholder without a value (templating's NotSet).
type notSet struct{}

var onePlaceholderRe = regexp.MustCompile(`^\{\{\s*(\S+?)\s*\}\}$`)

// applyValues fills placeholders with values; a lone placeholder without a
// value becomes notSet, and notSet entries leave dicts and lists
// (templating.apply_values with remove_notset=True).
func applyValues(tmpl any, values map[string]any) any {
	switch t := tmpl.(type) {
	case string:
		if m := onePlaceholderRe.FindStringSubmatch(t); m != nil {
			if v, ok := values[m[1]]; ok && v != nil {
				return v
			}
			return notSet{}
		}
		return placeholderRe.ReplaceAllStringFunc(t, func(ph string) string {
			name := placeholderRe.FindStringSubmatch(ph)[1]
			if v, ok := values[name]; ok && v != nil {
				if s, ok := v.(string); ok {
					return s
				}
				b, _ := json.Marshal(v)
				return string(b)
			}
			return ph
		})
	case map[string]any:
		out := map[string]any{}
		for k, v := range t {
			if r := applyValues(v, values); r != (notSet{}) {
				out[k] = r
			}
		}
		return out
	case []any:
		out := []any{}
		for _, v := range t {
			if r := applyValues(v, values); r != (notSet{}) {
				out = append(out, r)
			}
		}
		return out
	}
	return tmpl
}

// jobVariables merges the pool's non-null defaults with the deployment's
// and the run's job variables (§A.4 step 2).
func jobVariables(template map[string]any, layers ...map[string]any) map[string]any {
	vars := map[string]any{}
	for k, v := range templateDefaults(template) {
		if v != nil {
			vars[k] = v
		}
	}
	for _, l := range layers {
		for k, v := range l {
			if name, ok := strings.CutPrefix(k, "env."); ok {
				env, _ := vars["env"].(map[string]any)
				if env == nil {
					env = map[string]any{}
				}
				env[name] = v
				vars["env"] = env
				continue
			}
			if k == "env" {
				merged := map[string]any{}
				if base, ok := vars["env"].(map[string]any); ok {
					for ek, ev := range base {
						merged[ek] = ev
					}
				}
				if add, ok := v.(map[string]any); ok {
					for ek, ev := range add {
						merged[ek] = ev
					}
				}
				vars["env"] = merged
				continue
			}
			vars[k] = v
		}
	}
	return vars
}

// ecsJob is the resolved ECSJobConfiguration.
type ecsJob struct {
	raw map[string]any
	// The fields the worker reads.
	env, labels                   map[string]any
	command                       []string
	taskDefinition, taskRunRequst map[string]any
	networkConfiguration          map[string]any
	cloudwatchLogsOptions         map[string]any
	vpcID, cluster, containerName string
	executionRoleARN              string
	keySecretARN, authSecretARN   string
	cloudwatchLogs, matchLatest   bool
	cloudwatchLogsPrefix          string
	autoDeregister                bool
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asBool(v any) bool {
	b, _ := v.(bool)
	return b
}

// workerContext is what the worker knows about a run it submits.
type workerContext struct {
	workerName, poolName, poolID string
	workerEnv                    map[string]string // the worker container's environment and secrets
	run                          *flowRun
	flowName                     string
	deploymentName               string
	deploymentUpdated            string
}

// tagSlugRe is the characters the worker replaces in tags (ew:151).
var tagSlugRe = regexp.MustCompile(`[^a-zA-Z0-9_./=+:@-]+`)

// dashesRe is python-slugify's DUPLICATE_DASH_PATTERN.
var dashesRe = regexp.MustCompile(`-{2,}`)

// resolveJob resolves a run's job configuration (steps 1-4 above).
func resolveJob(template map[string]any, depVars, runVars map[string]any, wc workerContext) (*ecsJob, error) {
	vars := jobVariables(template, depVars, runVars)
	jc := asMap(applyValues(asMap(template["job_configuration"]), vars))
	j := &ecsJob{raw: jc}
	j.taskDefinition = asMap(jc["task_definition"])
	j.taskRunRequst = asMap(jc["task_run_request"])
	j.networkConfiguration = asMap(jc["network_configuration"])
	j.cloudwatchLogsOptions = asMap(jc["cloudwatch_logs_options"])
	j.vpcID, j.cluster, j.containerName = asString(jc["vpc_id"]), asString(jc["cluster"]), asString(jc["container_name"])
	j.executionRoleARN = asString(jc["execution_role_arn"])
	j.keySecretARN, j.authSecretARN = asString(jc["prefect_api_key_secret_arn"]), asString(jc["prefect_api_auth_string_secret_arn"])
	j.cloudwatchLogs, j.matchLatest = asBool(jc["configure_cloudwatch_logs"]), asBool(jc["match_latest_revision_in_family"])
	j.cloudwatchLogsPrefix, j.autoDeregister = asString(jc["cloudwatch_logs_prefix"]), asBool(jc["auto_deregister_task_definition"])

	// prepare_for_flow_run (base:396-529).
	env := map[string]any{}
	for k, v := range wc.workerEnv {
		if strings.HasPrefix(k, "PREFECT_") && !strings.HasPrefix(k, "PREFECT__") {
			env[k] = v
		}
	}
	r := wc.run
	env["PREFECT__FLOW_RUN_ID"], env["PREFECT__FLOW_ID"], env["PREFECT__FLOW_NAME"] = r.id, r.flowID, wc.flowName
	env["PREFECT__WORKER_NAME"] = wc.workerName
	if r.deploymentID != "" {
		env["PREFECT__DEPLOYMENT_ID"], env["PREFECT__DEPLOYMENT_NAME"] = r.deploymentID, wc.deploymentName
	}
	for k, v := range asMap(jc["env"]) {
		env[k] = v
	}
	j.env = env
	labels := map[string]any{
		"prefect.io/flow-run-id": r.id, "prefect.io/flow-run-name": r.name, "prefect.io/version": prefectVersion,
		"prefect.io/work-pool-name": wc.poolName, "prefect.io/work-pool-id": wc.poolID, "prefect.io/worker-name": wc.workerName,
		"prefect.io/flow-id": r.flowID, "prefect.io/flow-name": wc.flowName,
	}
	if r.deploymentID != "" {
		labels["prefect.io/deployment-id"], labels["prefect.io/deployment-name"] = r.deploymentID, wc.deploymentName
		labels["prefect.io/deployment-updated"] = wc.deploymentUpdated
	}
	for k, v := range asMap(jc["labels"]) {
		labels[k] = v
	}
	j.labels = labels
	// base prepare_for_flow_run: the default command (base:412-419).
	j.command = []string{"prefect", "flow-run", "execute"}
	if c := asString(jc["command"]); c != "" {
		j.command = shlexSplit(c)
	}

	// ECSJobConfiguration's model validators (ew:378-474), in order.
	if asString(j.taskRunRequst["taskDefinition"]) == "" && len(j.taskDefinition) == 0 {
		return nil, validationError("A task definition must be provided if a task definition ARN is not present on the task run request.")
	}
	if j.containerName == "" {
		j.containerName = containerNameFromTD(j.taskDefinition) // container_name_default_from_task_definition
	}
	if defs := asList(j.taskDefinition["containerDefinitions"]); len(defs) > 0 {
		allNonEssential := true
		for _, d := range defs {
			allNonEssential = allNonEssential && asMap(d)["essential"] == false
		}
		if allNonEssential {
			return nil, validationError("At least one container in the task definition must be marked as essential.")
		}
	}
	if j.cloudwatchLogs && j.executionRoleARN == "" && asString(j.taskRunRequst["taskDefinition"]) == "" && asString(j.taskDefinition["executionRoleArn"]) == "" {
		return nil, validationError("An `execution_role_arn` must be provided to use `configure_cloudwatch_logs` or `stream_logs`.")
	}
	if len(j.cloudwatchLogsOptions) > 0 && !j.cloudwatchLogs {
		return nil, validationError("`configure_cloudwatch_log` must be enabled to use `cloudwatch_logs_options`.")
	}
	if len(j.networkConfiguration) > 0 && j.vpcID == "" {
		return nil, validationError("You must provide a `vpc_id` to enable custom `network_configuration`.")
	}
	// ECSJobConfiguration.prepare_for_flow_run (ew:360-376).
	if j.keySecretARN != "" {
		if _, ok := j.env["PREFECT_API_KEY"]; !ok {
			return nil, pyErr("KeyError", "'PREFECT_API_KEY'")
		}
		delete(j.env, "PREFECT_API_KEY")
	}
	if j.authSecretARN != "" {
		delete(j.env, "PREFECT_API_AUTH_STRING")
	}
	return j, nil
}

// prefectVersion is the Prefect the simulated workers run.
const prefectVersion = "3.8.4"

// taskDefinitionFor is _prepare_task_definition (ew:1148-1292): the
// orchestration container (container_name, else the definition's "prefect"
// or first container, else a new "prefect" one) with the default image,
// awslogs when configure_cloudwatch_logs, the family, cpu and memory (as
// strings at task level for Fargate, as ints on the container otherwise),
// empty keys dropped, and the credentials' secrets.
func (j *ecsJob) taskDefinitionFor(region, pool string, r *flowRun) (map[string]any, error) {
	td := deepCopy(j.taskDefinition).(map[string]any)
	var containers []any
	for _, c := range asList(td["containerDefinitions"]) {
		if m := asMap(c); len(m) > 0 {
			containers = append(containers, m)
		}
	}
	td["containerDefinitions"] = containers
	name := j.containerName
	if name == "" {
		name = firstOf(containerNameFromTD(td), "prefect")
	}
	container := findContainer(containers, name)
	if container == nil {
		if name != "prefect" {
			return nil, pyErr("ValueError", "Container %s not found in task definition.", pyRepr(name))
		}
		for _, c := range containers {
			if _, has := asMap(c)["name"]; !has {
				container = asMap(c)
				container["name"] = name
				break
			}
		}
		if container == nil {
			container = map[string]any{"name": name}
			containers = append(containers, container)
			td["containerDefinitions"] = containers
		}
	}
	if _, ok := container["image"]; !ok {
		// get_prefect_image_name: Docker Hub's prefecthq/prefect for the
		// worker's version (src/prefect/utilities/dockerutils.py:44-83).
		container["image"] = defaultFlowRunImage
	}
	if j.cloudwatchLogs {
		prefix := "prefect-logs_" + pool + "_" + firstOf(r.deploymentID, r.flowID)
		opts := map[string]any{"awslogs-create-group": "true", "awslogs-group": "prefect", "awslogs-region": region,
			"awslogs-stream-prefix": firstOf(j.cloudwatchLogsPrefix, prefix)}
		for k, v := range j.cloudwatchLogsOptions {
			opts[k] = v
		}
		container["logConfiguration"] = map[string]any{"logDriver": "awslogs", "options": opts}
	}
	if asString(td["family"]) == "" {
		// _get_or_generate_family (ew:1130-1146); its slugify result is
		// discarded, so the family is used as generated.
		td["family"] = "prefect_" + pool + "_" + firstOf(r.deploymentID, r.flowID)
	}
	cpu, mem := td["cpu"], td["memory"]
	if falsy(cpu) {
		cpu = 1024
	}
	if falsy(mem) {
		mem = 2048
	}
	if launch := asString(j.taskRunRequst["launchType"]); launch == "FARGATE" || launch == "FARGATE_SPOT" {
		td["cpu"], td["memory"] = numString(cpu), numString(mem)
		rc := asList(td["requiresCompatibilities"])
		if !containsAny(rc, "FARGATE") {
			td["requiresCompatibilities"] = append(rc, "FARGATE")
		}
		if _, ok := td["networkMode"]; !ok {
			td["networkMode"] = "awsvpc"
		}
	} else {
		if _, ok := container["cpu"]; !ok {
			container["cpu"] = toInt(cpu)
		}
		if _, ok := container["memory"]; !ok {
			container["memory"] = toInt(mem)
		}
	}
	for _, k := range []string{"cpu", "memory"} {
		if !falsy(td[k]) {
			td[k] = numString(td[k])
		}
	}
	dropEmpty(td)
	secrets := map[string]string{}
	if j.keySecretARN != "" {
		secrets["PREFECT_API_KEY"] = j.keySecretARN
	}
	if j.authSecretARN != "" {
		secrets["PREFECT_API_AUTH_STRING"] = j.authSecretARN
	}
	if len(secrets) > 0 {
		var env []any
		for _, e := range asList(container["environment"]) {
			if _, isSecret := secrets[asString(asMap(e)["name"])]; !isSecret {
				env = append(env, e)
			}
		}
		if _, had := container["environment"]; had {
			container["environment"] = env
		}
		var list []any
		for _, s := range asList(container["secrets"]) {
			sm := asMap(s)
			if v, ok := secrets[asString(sm["name"])]; ok {
				sm["valueFrom"] = v
				delete(secrets, asString(sm["name"]))
			}
			list = append(list, sm)
		}
		for _, k := range []string{"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"} {
			if v, ok := secrets[k]; ok {
				list = append(list, map[string]any{"name": k, "valueFrom": v})
			}
		}
		container["secrets"] = list
	}
	return td, nil
}

// defaultFlowRunImage is the image a flow run's container gets when the
// template names none.
const defaultFlowRunImage = "prefecthq/prefect:" + prefectVersion + "-python3.12"

// validateTaskDefinition is _validate_task_definition (ew:1026-1083).
func (j *ecsJob) validateTaskDefinition(td map[string]any) error {
	if j.cloudwatchLogs && asString(td["executionRoleArn"]) == "" {
		return pyErr("ValueError", "An execution role arn must be set on the task definition to use `configure_cloudwatch_logs` or `stream_logs` but no execution role was found on the task definition.")
	}
	launch := asString(j.taskRunRequst["launchType"])
	cps := asList(j.taskRunRequst["capacityProviderStrategy"])
	rc := asList(td["requiresCompatibilities"])
	requiresEC2 := containsAny(rc, "EC2")
	if launch == "" && len(cps) == 0 && !requiresEC2 {
		launch = "FARGATE"
	}
	if len(cps) > 0 && launch != "FARGATE_SPOT" {
		return nil
	}
	if requiresEC2 && launch == "" {
		return nil
	}
	if _, has := td["requiresCompatibilities"]; !has {
		rc = []any{"FARGATE"}
	}
	if launch != "EC2" && !containsAny(rc, "FARGATE") {
		return pyErr("ValueError", "Task definition does not have 'FARGATE' in 'requiresCompatibilities' and cannot be used with launch type %s", pyRepr(launch))
	}
	if launch == "FARGATE" || launch == "FARGATE_SPOT" {
		nm := firstOf(asString(td["networkMode"]), "awsvpc")
		if nm != "awsvpc" {
			return pyErr("ValueError", "Found network mode %s which is not compatible with launch type %s. Use either the 'EC2' launch type or the 'awsvpc' network mode.", pyRepr(nm), pyRepr(launch))
		}
	}
	return nil
}

// containerNameFromTD is _container_name_from_task_definition (ew:211-230).
func containerNameFromTD(td map[string]any) string {
	defs := asList(td["containerDefinitions"])
	if findContainer(defs, "prefect") != nil {
		return "prefect"
	}
	if len(defs) > 0 {
		return asString(asMap(defs[0])["name"])
	}
	return ""
}

func findContainer(list []any, name string) map[string]any {
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && asString(m["name"]) == name {
			return m
		}
	}
	return nil
}

// falsy is Python's `not value`.
func falsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case float64:
		return x == 0
	case int:
		return x == 0
	case int64:
		return x == 0
	case json.Number:
		f, _ := x.Float64()
		return f == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// dropEmpty is _drop_empty_keys_from_dict (ew:176-196): keys with empty
// values (None, "", 0, [], {}) go, False stays; it recurses into dicts and
// the dicts of lists (but not capacity_provider_strategy's).
func dropEmpty(m map[string]any) {
	for k, v := range m {
		if b, isBool := v.(bool); falsy(v) && !(isBool && !b) {
			delete(m, k)
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			dropEmpty(x)
		case []any:
			if k != "capacity_provider_strategy" {
				for _, e := range x {
					if em, ok := e.(map[string]any); ok {
						dropEmpty(em)
					}
				}
			}
		}
	}
}

func numString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return fmt.Sprint(int64(x))
	case int:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func containsAny(l []any, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	_ = d.Decode(&out)
	if out == nil {
		return map[string]any{}
	}
	return out
}

// runRequestFor is _prepare_task_run_request (ew:1385-1579) without the
// network configuration, which needs AWS (simworker.go): the task
// definition, cluster and launch type; the orchestration container's
// override gets the command and the job's environment; the labels become
// slugified tags.
func (j *ecsJob) runRequestFor(td map[string]any, tdARN string, newTD bool) map[string]any {
	req := deepCopy(j.taskRunRequst).(map[string]any)
	if _, ok := req["taskDefinition"]; !ok {
		req["taskDefinition"] = tdARN
	}
	if j.cluster != "" && asString(req["cluster"]) == "" {
		req["cluster"] = j.cluster
	}
	requiresEC2 := containsAny(asList(td["requiresCompatibilities"]), "EC2")
	if asString(req["launchType"]) == "" {
		if requiresEC2 {
			delete(req, "launchType")
		} else {
			req["launchType"] = "FARGATE"
		}
	}
	if len(asList(req["capacityProviderStrategy"])) > 0 {
		delete(req, "launchType")
	} else if req["launchType"] == "FARGATE_SPOT" {
		delete(req, "launchType")
		req["capacityProviderStrategy"] = []any{map[string]any{"capacityProvider": "FARGATE_SPOT", "weight": 1}}
	}
	overrides := asMap(req["overrides"])
	cos := asList(overrides["containerOverrides"])
	name := firstOf(j.containerName, containerNameFromTD(td), "prefect")
	if len(cos) > 0 {
		if first, ok := cos[0].(map[string]any); ok && asString(first["name"]) == "" {
			first["name"] = name
		}
	}
	orchestration := findContainer(cos, name)
	if orchestration != nil && len(j.command) > 0 {
		cmd := make([]any, len(j.command))
		for i, c := range j.command {
			cmd[i] = c
		}
		orchestration["command"] = cmd
	}
	for _, c := range cos {
		co, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if s, ok := co["command"].(string); ok {
			var cmd []any
			for _, w := range shlexSplit(s) {
				cmd = append(cmd, w)
			}
			co["command"] = cmd
		}
		if env, ok := co["environment"].(map[string]any); ok {
			co["environment"] = pairs(env, "name")
		}
		var kept []any
		for _, e := range asList(co["environment"]) {
			if asMap(e)["value"] != nil {
				kept = append(kept, e)
			}
		}
		co["environment"] = orEmpty(kept)
	}
	if tags, ok := req["tags"].(map[string]any); ok {
		req["tags"] = pairs(tags, "key")
	}
	for _, k := range []string{"cpu", "memory"} {
		if !falsy(overrides[k]) {
			overrides[k] = numString(overrides[k])
		}
	}
	tags := overlaid(asList(req["tags"]), "key", j.labels, func(v any) any { return v })
	for i, t := range tags {
		tm := asMap(t)
		tags[i] = map[string]any{"key": slugifyTag(fmt.Sprint(tm["key"])), "value": slugifyTag(fmt.Sprint(tm["value"]))}
	}
	if newTD && j.autoDeregister {
		tags = append(tags, map[string]any{"key": "prefect.io/degregister-task-definition", "value": "true"})
	}
	if len(tags) > 0 {
		req["tags"] = tags
	}
	if orchestration != nil {
		env := overlaid(asList(orchestration["environment"]), "name", j.env, func(v any) any { return fmt.Sprint(v) })
		if len(env) > 0 {
			orchestration["environment"] = env
		}
	}
	var nonEmpty []any
	for _, c := range cos {
		if !falsy(c) {
			nonEmpty = append(nonEmpty, c)
		}
	}
	overrides["containerOverrides"] = orEmpty(nonEmpty)
	req["overrides"] = overrides
	return req
}

// pairs is m as AWS's list of {key: k, "value": v}, in key order.
func pairs(m map[string]any, key string) []any {
	var out []any
	for _, k := range sortedMapKeys(m) {
		out = append(out, map[string]any{key: k, "value": m[k]})
	}
	return out
}

// overlaid is list (pairs) without the pairs whose key set has, then set's
// non-nil entries as pairs of value(v): how the worker lays its labels over
// the tags and its environment over the container's.
func overlaid(list []any, key string, set map[string]any, value func(any) any) []any {
	var out []any
	for _, e := range list {
		if _, over := set[asString(asMap(e)[key])]; !over {
			out = append(out, e)
		}
	}
	values := map[string]any{}
	for k, v := range set {
		if v != nil {
			values[k] = value(v)
		}
	}
	return append(out, pairs(values, key)...)
}

// slugifyTag is python-slugify with the worker's pattern (ew:1523-1550):
// runs of other characters become "-", trimmed at the ends.
func slugifyTag(s string) string {
	return strings.Trim(dashesRe.ReplaceAllString(tagSlugRe.ReplaceAllString(s, "-"), "-"), "-")
}

func toInt(v any) any {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		return n
	case string:
		var n int64
		_, _ = fmt.Sscan(x, &n)
		return n
	}
	return v
}
