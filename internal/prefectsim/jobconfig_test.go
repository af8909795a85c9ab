package prefectsim

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func testTemplate(defaults map[string]any) map[string]any {
	t := ecsDefaultTemplate()
	props := t["variables"].(map[string]any)["properties"].(map[string]any)
	for k, v := range defaults {
		props[k].(map[string]any)["default"] = v
	}
	return t
}

func testContext() workerContext {
	return workerContext{workerName: "w-1", poolName: "ecs-pool", poolID: "pool-id", flowName: "deploybot-smoke", deploymentName: "smoke",
		workerEnv: map[string]string{"PREFECT_API_URL": "https://api.example/x", "PREFECT_API_KEY": "pnu_k", "DEPLOYBOT_WORK_POOL": "ecs-pool", "PREFECT__FLOW_RUN_ID": "stale"},
		run:       &flowRun{id: "run-1", name: "eager-heron", flowID: "flow-1", deploymentID: "dep-1"}}
}

func TestJobVariablesLayerDefaultsDeploymentAndRun(t *testing.T) {
	tmpl := testTemplate(map[string]any{"cluster": "c-default", "cpu": 256, "env": map[string]any{"A": "pool", "B": "pool"}})
	j, err := resolveJob(tmpl, map[string]any{"cluster": "c-deployment", "env": map[string]any{"B": "deployment"}},
		map[string]any{"env.C": "run", "memory": 1024}, testContext())
	if err != nil {
		t.Fatal(err)
	}
	if j.cluster != "c-deployment" {
		t.Errorf("cluster %q: the deployment's job variables win over the pool's default", j.cluster)
	}
	for k, want := range map[string]any{"A": "pool", "B": "deployment", "C": "run", "PREFECT_API_URL": "https://api.example/x", "PREFECT_API_KEY": "pnu_k", "PREFECT__FLOW_RUN_ID": "run-1"} {
		if j.env[k] != want {
			t.Errorf("env %s = %v, want %v", k, j.env[k], want)
		}
	}
	if _, ok := j.env["DEPLOYBOT_WORK_POOL"]; ok {
		t.Error("only the worker's PREFECT_ settings go into the run's environment (base:432-439)")
	}
	// Placeholders without a value drop their key: no task role, no
	// execution role, no family in the task definition.
	if _, ok := j.taskDefinition["executionRoleArn"]; ok {
		t.Errorf("task definition %v", j.taskDefinition)
	}
	if asMap(j.taskRunRequst["overrides"])["taskRoleArn"] != nil {
		t.Errorf("overrides %v", j.taskRunRequst["overrides"])
	}
	if fmt.Sprint(j.taskDefinition["cpu"]) != "256" || fmt.Sprint(asMap(asList(asMap(j.taskRunRequst["overrides"])["containerOverrides"])[0])["memory"]) != "1024" {
		t.Errorf("cpu/memory: td %v, overrides %v", j.taskDefinition, j.taskRunRequst["overrides"])
	}
}

func TestNestedDefaultsAreIgnoredAsTheWorkerIgnoresThem(t *testing.T) {
	// prefect-aws's update_work_pool_defaults nests subnets under
	// network_configuration.properties (fact 2): the worker only reads
	// top-level defaults.
	tmpl := testTemplate(nil)
	nc := tmpl["variables"].(map[string]any)["properties"].(map[string]any)["network_configuration"].(map[string]any)
	nc["properties"] = map[string]any{"awsvpcConfiguration": map[string]any{"properties": map[string]any{"subnets": map[string]any{"default": []any{"subnet-1"}}}}}
	j, err := resolveJob(tmpl, nil, nil, testContext())
	if err != nil {
		t.Fatal(err)
	}
	if len(j.networkConfiguration) != 0 {
		t.Errorf("network configuration %v", j.networkConfiguration)
	}
}

func TestTheSecretARNTakesTheKeyOutOfTheEnvironment(t *testing.T) {
	j, err := resolveJob(testTemplate(map[string]any{"prefect_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:k"}), nil, nil, testContext())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.env["PREFECT_API_KEY"]; ok {
		t.Error("PREFECT_API_KEY stays in the environment")
	}
	td, err := j.taskDefinitionFor("us-east-1", "ecs-pool", testContext().run)
	if err != nil {
		t.Fatal(err)
	}
	c := asMap(asList(td["containerDefinitions"])[0])
	if !reflect.DeepEqual(c["secrets"], []any{map[string]any{"name": "PREFECT_API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}}) {
		t.Errorf("secrets %v", c["secrets"])
	}
	ctx := testContext()
	delete(ctx.workerEnv, "PREFECT_API_KEY")
	if _, err := resolveJob(testTemplate(map[string]any{"prefect_api_key_secret_arn": "arn"}), nil, nil, ctx); err == nil || err.Error() != "KeyError: 'PREFECT_API_KEY'" {
		t.Errorf("a secret ARN without a key in the worker: %v, want KeyError (ew:360-376)", err)
	}
}

func TestTheDefaultTaskDefinitionAndRunRequest(t *testing.T) {
	j, err := resolveJob(testTemplate(nil), nil, map[string]any{"labels": map[string]any{"team": "data eng"}}, testContext())
	if err != nil {
		t.Fatal(err)
	}
	td, err := j.taskDefinitionFor("us-east-1", "ecs-pool", testContext().run)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"containerDefinitions": []any{map[string]any{"name": "prefect", "image": "prefecthq/prefect:3.8.4-python3.12"}},
		"family": "prefect_ecs-pool_dep-1", "cpu": "1024", "memory": "2048", "requiresCompatibilities": []any{"FARGATE"}, "networkMode": "awsvpc"}
	if !reflect.DeepEqual(td, want) {
		t.Errorf("task definition\n %v\nwant\n %v", td, want)
	}
	req := j.runRequestFor(td, "arn:td:1", true)
	if req["launchType"] != "FARGATE" || req["taskDefinition"] != "arn:td:1" || req["cluster"] != nil {
		t.Errorf("request %v", req)
	}
	co := asMap(asList(asMap(req["overrides"])["containerOverrides"])[0])
	if co["name"] != "prefect" || !reflect.DeepEqual(co["command"], []any{"prefect", "flow-run", "execute"}) {
		t.Errorf("container override %v", co)
	}
	tags := map[string]string{}
	for _, tg := range asList(req["tags"]) {
		tags[asString(asMap(tg)["key"])] = asString(asMap(tg)["value"])
	}
	if tags["team"] != "data-eng" || tags["prefect.io/flow-run-id"] != "run-1" || tags["prefect.io/worker-name"] != "w-1" {
		t.Errorf("tags %v", tags)
	}
}

func TestTaskDefinitionsEqualIgnoresWhatECSAdds(t *testing.T) {
	gen := map[string]any{"family": "f", "networkMode": "awsvpc", "cpu": "1024", "containerDefinitions": []any{map[string]any{"name": "prefect", "image": "i",
		"environment": []any{map[string]any{"name": "B", "value": "2"}, map[string]any{"name": "A", "value": "1"}}}}}
	got := map[string]any{"family": "f", "networkMode": "awsvpc", "cpu": "1024", "revision": 3, "status": "ACTIVE", "taskDefinitionArn": "arn",
		"compatibilities": []any{"EC2", "FARGATE"}, "volumes": []any{}, "containerDefinitions": []any{map[string]any{"name": "prefect", "image": "i", "essential": true,
			"cpu": 0, "portMappings": []any{}, "environment": []any{map[string]any{"name": "A", "value": "1"}, map[string]any{"name": "B", "value": "2"}}}}}
	if !taskDefinitionsEqual(gen, got) {
		t.Error("a registered copy of the generated definition should match")
	}
	got["containerDefinitions"].([]any)[0].(map[string]any)["image"] = "other"
	if taskDefinitionsEqual(gen, got) {
		t.Error("another image should not match")
	}
}

func TestShlexSplitAndTagSlugs(t *testing.T) {
	for in, want := range map[string][]string{
		`python -c "import a;print('x')"`: {"python", "-c", "import a;print('x')"},
		`printf 'a b' > smoke.py`:         {"printf", "a b", ">", "smoke.py"},
		`a\ b "c\"d" ''`:                  {"a b", `c"d`, ""},
	} {
		if got := shlexSplit(in); !reflect.DeepEqual(got, want) {
			t.Errorf("shlexSplit(%q) = %q, want %q", in, got, want)
		}
	}
	if got := slugifyTag("deploybot smoke (staging)!"); got != "deploybot-smoke-staging" {
		t.Errorf("slug %q", got)
	}
}

func TestPullStepsWriteTheSmokeFlow(t *testing.T) {
	src := "from prefect import flow\n\n\n@flow(name=\"deploybot-smoke\", log_prints=True)\ndef smoke():\n    print(\"deploybot smoke ok\")\n"
	script := `python -c "import base64,pathlib;pathlib.Path('smoke.py').write_bytes(base64.b64decode('ZnJvbSBwcmVmZWN0IGltcG9ydCBmbG93CgoKQGZsb3cobmFtZT0iZGVwbG95Ym90LXNtb2tlIiwgbG9nX3ByaW50cz1UcnVlKQpkZWYgc21va2UoKToKICAgIHByaW50KCJkZXBsb3lib3Qgc21va2Ugb2siKQo='))"`
	ws, err := runPullSteps([]any{map[string]any{"prefect.deployments.steps.run_shell_script": map[string]any{"script": script}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws.files["smoke.py"] != src {
		t.Fatalf("smoke.py %q", ws.files["smoke.py"])
	}
	f, ok := ws.loadFlow("smoke.py:smoke")
	if !ok || f.flowName != "deploybot-smoke" || !f.logPrints || !reflect.DeepEqual(f.prints, []string{"deploybot smoke ok"}) {
		t.Errorf("flow %+v %v", f, ok)
	}
	if _, ok := ws.loadFlow("smoke.py:other"); ok {
		t.Error("a function the file lacks loaded")
	}
	// With shell: true a redirect writes the file (≥ 3.6.23).
	ws, err = runPullSteps([]any{map[string]any{"prefect.deployments.steps.run_shell_script": map[string]any{"shell": true, "script": `printf '%s' 'def smoke():' > flows/smoke.py`}}}, nil)
	if err != nil || !strings.HasPrefix(ws.files["flows/smoke.py"], "def smoke") {
		t.Errorf("shell redirect: %v %v", ws, err)
	}
}
