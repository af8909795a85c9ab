package prefectsim

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// A deployment's pull steps and entrypoint, as `prefect flow-run execute`
// runs them in a flow-run container (docs/research/prefect-flow-runs.md
// §D.1-D.2; Prefect ≥ 3.7: src/prefect/cli/flow_run.py:764-783,
// src/prefect/runner/_workspace_resolver.py, "wres"). The simulation knows
// the files the steps write, nothing else of the image: a flow is found
// only in a file a step wrote. Modelled steps:
//   - prefect.deployments.steps.run_shell_script (steps/utility.py:113-275):
//     one process per line, shlex.split and exec'd without a shell unless
//     shell: true; expand_env_vars substitutes $VAR; a non-zero exit raises
//     RuntimeError("`run_shell_script` failed with error code N: <stderr>").
//     Programs: `python[3] -c` code that writes a file with
//     pathlib.Path(...).write_bytes(base64.b64decode('...')) or
//     .write_text('...'), or open(...,'w').write('...'), or fails (raise,
//     sys.exit(1)); printf/echo (stdout only: `>` is an argument without a
//     shell); true/false; exit N or `sh -c` scripts when shell: true. Any
//     other program succeeds without writing anything.
//   - prefect.deployments.steps.set_working_directory (steps/pull.py:25-41).
//   - any other step succeeds without writing anything (git_clone,
//     pull_from_s3, …: not modelled).
// A failing step is StepExecutionError("Encountered error while running
// <step>") caused by the step's exception (steps/core.py:269-285), which
// the workspace resolver reports and the executor turns into CRASHED
// "Flow run could not start: …" (runner/_workspace_starter.py:42-92,
// runner/_flow_run_executor.py:164-176).

// workspace is what the pull steps leave.
type workspace struct {
	cwd    string            // relative to the workspace root ("" = the root)
	files  map[string]string // by path relative to the root
	stdout []string          // what the steps printed (stream_output)
}

// stepError is a pull step's failure as the resolver reports it.
type stepError struct{ step, causeType, causeMsg string }

func (e *stepError) Error() string {
	return fmt.Sprintf("StepExecutionError: Encountered error while running %s (caused by %s: %s)", e.step, e.causeType, e.causeMsg)
}

// runPullSteps runs a deployment's pull_steps with the container's env.
func runPullSteps(steps []any, env map[string]string) (*workspace, error) {
	ws := &workspace{files: map[string]string{}}
	for _, st := range steps {
		m, ok := st.(map[string]any)
		if !ok || len(m) != 1 {
			continue
		}
		for fqn, raw := range m {
			args := asMap(raw)
			switch fqn {
			case "prefect.deployments.steps.run_shell_script", "prefect.deployments.steps.utility.run_shell_script":
				if err := ws.runShellScript(args, env); err != nil {
					return nil, &stepError{step: fqn, causeType: "RuntimeError", causeMsg: err.Error()}
				}
			case "prefect.deployments.steps.set_working_directory", "prefect.deployments.steps.pull.set_working_directory":
				ws.cwd = ws.join(asString(args["directory"]))
			}
		}
	}
	return ws, nil
}

// join resolves p against the current directory (relative to the root).
func (ws *workspace) join(p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return strings.TrimPrefix(path.Clean(path.Join(ws.cwd, p)), "./")
}

var envVarRe = regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}`)

func (ws *workspace) runShellScript(args map[string]any, env map[string]string) error {
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range asMap(args["env"]) {
		vars[k] = fmt.Sprint(v)
	}
	dir := ws.cwd
	if d := asString(args["directory"]); d != "" {
		dir = ws.join(d)
	}
	saved := ws.cwd
	ws.cwd = dir
	defer func() { ws.cwd = saved }()
	stream := true
	if b, ok := args["stream_output"].(bool); ok {
		stream = b
	}
	script := asString(args["script"])
	if asBool(args["expand_env_vars"]) {
		script = envVarRe.ReplaceAllStringFunc(script, func(m string) string {
			sub := envVarRe.FindStringSubmatch(m)
			if v, ok := vars[firstOf(sub[1], sub[2])]; ok {
				return v
			}
			return m // string.Template.safe_substitute keeps unknown names
		})
	}
	for _, line := range strings.Split(strings.ReplaceAll(script, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var code int
		var stdout, stderr string
		if asBool(args["shell"]) {
			sc := runScript([]string{"sh", "-c", line}, vars, "", "pull-step")
			for name, content := range sc.files {
				ws.files[ws.join(name)] = content
			}
			code, stdout, stderr = ws.exec(sc.argv)
		} else {
			code, stdout, stderr = ws.exec(shlexSplit(line))
		}
		if stream && stdout != "" {
			ws.stdout = append(ws.stdout, strings.Split(strings.TrimRight(stdout, "\n"), "\n")...)
		}
		if code != 0 {
			return fmt.Errorf("`run_shell_script` failed with error code %d: %s", code, stderr)
		}
	}
	return nil
}

// exec runs one program of a step: its exit code, stdout and stderr.
func (ws *workspace) exec(argv []string) (int, string, string) {
	if len(argv) == 0 {
		return 0, "", ""
	}
	switch prog := path.Base(argv[0]); {
	case strings.HasPrefix(prog, "python") && len(argv) >= 3 && argv[1] == "-c":
		if stderr, ok := ws.python(argv[2]); !ok {
			return 1, "", stderr
		}
		return 0, "", ""
	case prog == "false":
		return 1, "", ""
	case prog == "exit":
		n := 0
		if len(argv) > 1 {
			_, _ = fmt.Sscan(argv[1], &n)
		}
		return n, "", ""
	case prog == "echo":
		return 0, strings.Join(argv[1:], " ") + "\n", ""
	case prog == "printf" && len(argv) > 1:
		return 0, pyUnescape(strings.Join(argv[1:], " ")), ""
	}
	return 0, "", ""
}

var (
	pyWriteBytesRe = regexp.MustCompile(`(?:pathlib\.)?Path\(\s*['"]([^'"]+)['"]\s*\)\.write_bytes\(\s*base64\.b64decode\(\s*['"]([A-Za-z0-9+/=\s]*)['"]\s*\)\s*\)`)
	pyWriteTextRe  = regexp.MustCompile(`(?:pathlib\.)?Path\(\s*['"]([^'"]+)['"]\s*\)\.write_text\(\s*'((?:[^'\\]|\\.)*)'\s*\)`)
	pyOpenWriteRe  = regexp.MustCompile(`open\(\s*['"]([^'"]+)['"]\s*,\s*['"]w['"]\s*\)\.write\(\s*'((?:[^'\\]|\\.)*)'\s*\)`)
	pyFailRe       = regexp.MustCompile(`\braise\b|sys\.exit\(\s*[1-9]`)
)

// python runs `python -c code` for what it writes; ok false: it exits 1.
func (ws *workspace) python(code string) (stderr string, ok bool) {
	if pyFailRe.MatchString(code) {
		return "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nException", false
	}
	for _, m := range pyWriteBytesRe.FindAllStringSubmatch(code, -1) {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[2]), ""))
		if err != nil {
			return "binascii.Error: Incorrect padding", false
		}
		ws.files[ws.join(m[1])] = string(b)
	}
	for _, re := range []*regexp.Regexp{pyWriteTextRe, pyOpenWriteRe} {
		for _, m := range re.FindAllStringSubmatch(code, -1) {
			ws.files[ws.join(m[1])] = pyUnescape(m[2])
		}
	}
	return "", true
}

func pyUnescape(s string) string {
	r := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\'`, "'", `\"`, `"`, `\\`, `\`)
	return r.Replace(s)
}

// shlexSplit is Python's shlex.split (POSIX mode, no comments).
func shlexSplit(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
				break
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
