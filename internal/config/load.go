// Package config owns environment files: strict YAML loading, defaults, and
// the validation a platform engineer wants before anything touches AWS. Every
// problem reads "FILE:LINE: field.path: message" and all of them are reported
// at once (see Errors). The package does no I/O beyond reading the files.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads: an environment file is a page of
// YAML, anything bigger is a mistake (or an attack on the parser).
const maxFileSize = 1 << 20

// Load reads, defaults and validates one environment file. Problems come
// back as *Errors (all of them, each with its line).
func Load(path string) (*Environment, error) {
	envs, err := LoadAll([]string{path})
	if err != nil {
		return nil, err
	}
	return envs[0], nil
}

// LoadAs is Load for the file at path, named shown in problems and in
// Environment.File (the repository-relative name, when path is where the
// file sits on disk).
func LoadAs(path, shown string) (*Environment, error) {
	env, errs := loadOne(path, shown)
	if err := errs.errOrNil(); err != nil {
		return nil, err
	}
	return env, nil
}

// loadOne reads and parses one file; the environment comes back whenever
// the file decoded, even with problems (to compare names).
func loadOne(path, shown string) (*Environment, *Errors) {
	errs := &Errors{}
	data, err := readFile(path)
	if err != nil {
		// Line 1, so that every problem of a file reads FILE:LINE and
		// tools that link FILE:LINE (Actions problem matchers) work.
		errs.add(Problem{File: shown, Line: 1, Message: err.Error()})
		return nil, errs
	}
	env, probs := parse(shown, data)
	errs.add(probs...)
	return env, errs
}

// LoadAll loads every file and also checks that environment names are unique
// across them. It returns the environments in the order of paths, or nil and
// an *Errors holding the problems of all files.
func LoadAll(paths []string) ([]*Environment, error) {
	errs := &Errors{}
	envs := make([]*Environment, 0, len(paths))
	for _, path := range paths {
		env, probs := loadOne(path, path)
		errs.add(probs.Problems...)
		if env != nil {
			envs = append(envs, env)
		}
	}
	errs.add(UniqueNames(envs)...)
	if err := errs.errOrNil(); err != nil {
		return nil, err
	}
	return envs, nil
}

// UniqueNames reports every environment whose name another file also
// defines, once in each file, at the name's line: names must be unique,
// they name the AWS resources.
func UniqueNames(envs []*Environment) []Problem {
	var probs []Problem
	firstByName := map[string]*Environment{}
	for _, env := range envs {
		if env == nil || !nameRE.MatchString(env.Name) {
			continue
		}
		first, dup := firstByName[env.Name]
		if !dup {
			firstByName[env.Name] = env
			continue
		}
		probs = append(probs,
			Problem{File: env.File, Line: env.Lines["name"], Field: "name",
				Message: fmt.Sprintf("environment %q is also defined in %s:%d; names must be unique, they name the AWS resources", env.Name, first.File, first.Lines["name"])},
			Problem{File: first.File, Line: first.Lines["name"], Field: "name",
				Message: fmt.Sprintf("environment %q is also defined in %s:%d; names must be unique, they name the AWS resources", env.Name, env.File, env.Lines["name"])})
	}
	return probs
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes; an environment file is a page of YAML", maxFileSize)
	}
	return data, nil
}

// unwrapPath drops the *PathError's path, which the problem already shows.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Discover lists the environment files in dir: *.yaml and *.yml, sorted,
// skipping dotfiles (editor backups) and anything that is not a file.
func Discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Errors{Problems: []Problem{{File: dir, Message: fmt.Sprintf("cannot list environment files: %v", unwrapPath(err))}}}
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") || !e.Type().IsRegular() {
			continue
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, &Errors{Problems: []Problem{{File: dir, Message: "no environment files (*.yaml, *.yml) here"}}}
	}
	return paths, nil
}

var (
	yamlErrLine       = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlUnknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)
)

// yamlParserErrors are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner: for these it prints the 0-based line of the
// construct it was parsing (decode.go, parser.fail), so we add one.
var yamlParserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlErrorLine finds the 1-based line of a yaml.v3 error and its message
// without the "yaml: line N:" prefix. A line past the end (an error at the
// end of a file without a final newline) is the last line.
func yamlErrorLine(err error, data []byte) (int, string) {
	line, msg := yamlErrorLineRaw(err, data)
	return min(max(line, 1), lineCount(data)), msg
}

// tabIndent is the scanner's error for a tab in a line's indentation: it
// names the line of the construct before it, so the line is found in the
// file instead (issue 11 item 18: a tab on line 12 was reported at 11).
const tabIndent = "found a tab character that violates indentation"

func yamlErrorLineRaw(err error, data []byte) (int, string) {
	text := err.Error()
	if m := yamlErrLine.FindStringSubmatch(text); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserErrors[m[2]] {
			line++
		}
		if m[2] == tabIndent {
			if l := firstTabIndented(data, line); l > 0 {
				line = l
			}
		}
		return max(line, 1), m[2]
	}
	msg := strings.TrimPrefix(text, "yaml: ")
	if m := yamlUnknownAnchor.FindStringSubmatch(msg); m != nil {
		for i, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "*"+m[1]) {
				return i + 1, msg + " (an anchor must be defined above its first use)"
			}
		}
	}
	return 1, msg
}

// firstTabIndented is the 1-based number of the first line at or after from
// whose indentation holds a tab, or 0.
func firstTabIndented(data []byte, from int) int {
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return 0
}

// parse decodes, defaults and validates one file's bytes. The environment
// comes back whenever the file decoded as a mapping, even with problems, so
// that LoadAll can still compare names across files.
func parse(file string, data []byte) (env *Environment, probs []Problem) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, []Problem{{File: file, Line: 1, Message: "file is empty; an environment needs at least name, aws, prefect and worker"}}
	}
	if p := encodingProblem(file, data); p != nil {
		return nil, []Problem{*p}
	}
	root, err := parseYAML(data)
	if err != nil {
		line, msg := yamlErrorLine(err, data)
		return nil, []Problem{{File: file, Line: line, Message: "invalid YAML: " + msg}}
	}
	d := newDecoder(file)
	e := &Environment{File: file}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the file must be a mapping of name, aws, prefect, worker, ...; found %s", describe(root))
		return nil, d.probs
	}
	d.mapping(root, "", reflect.ValueOf(e).Elem())
	applyDefaults(e, d.set)
	e.Lines = d.lines
	validate(e, d)
	return e, d.probs
}

// parseYAML returns the single document's root node.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on hostile input in the past; a broken file
		// must come back as a problem, not a crash.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("yaml: the file has no YAML document")
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("yaml: line %d: a second YAML document (---); put one environment per file", max(next.Line, 1))
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("yaml: the file has no YAML document")
	}
	root = resolveAlias(doc.Content[0])
	if root == nil {
		return nil, errors.New("yaml: the file has no YAML document")
	}
	return root, nil
}

// applyDefaults fills fields that were absent or null. Presence, not the zero
// value, decides: desired_count: 0 is a value the user wrote. Managed-network
// defaults apply only in managed mode, so an existing-mode environment has no
// CIDR or NAT that does not exist.
func applyDefaults(e *Environment, set map[string]bool) {
	setDefault(set, "worker.cpu", &e.Worker.CPU, DefaultCPU)
	setDefault(set, "worker.memory", &e.Worker.Memory, DefaultMemory)
	// With autoscaling, start where the scaler would put the service
	// anyway, so that min <= desired_count <= max holds by default.
	desired := DefaultDesiredCount
	if a := e.Worker.Autoscaling; a != nil && set["worker.autoscaling.min"] && a.Min > DefaultDesiredCount {
		desired = a.Min
	}
	setDefault(set, "worker.desired_count", &e.Worker.DesiredCount, desired)
	setDefault(set, "worker.log_retention_days", &e.Worker.LogRetentionDays, DefaultLogRetentionDays)
	setDefault(set, "flow_runs.image", &e.FlowRuns.Image, e.Worker.Image)
	setDefault(set, "flow_runs.cpu", &e.FlowRuns.CPU, DefaultFlowRunCPU)
	setDefault(set, "flow_runs.memory", &e.FlowRuns.Memory, DefaultFlowRunMemory)
	setDefault(set, "flow_runs.log_retention_days", &e.FlowRuns.LogRetentionDays, DefaultLogRetentionDays)
	if e.Worker.Autoscaling != nil {
		setDefault(set, "worker.autoscaling.target_cpu_percent", &e.Worker.Autoscaling.TargetCPUPercent, DefaultTargetCPUPercent)
	}
	setDefault(set, "network.mode", &e.Network.Mode, DefaultNetworkMode)
	if e.Network.Mode == "managed" {
		setDefault(set, "network.cidr", &e.Network.CIDR, DefaultCIDR)
		setDefault(set, "network.availability_zones", &e.Network.AvailabilityZones, DefaultAZs)
		setDefault(set, "network.nat", &e.Network.NAT, DefaultNAT)
	}
	if e.Name != "" {
		setDefault(set, "service_discovery.namespace", &e.ServiceDiscovery.Namespace, e.Name+NamespaceSuffix)
	}
	setDefault(set, "prefect.auth", &e.Prefect.Auth, AuthAPIKey)
	setDefault(set, "health_gate.timeout", &e.HealthGate.Timeout, DefaultGateTimeout)
	setDefault(set, "health_gate.min_online_workers", &e.HealthGate.MinOnlineWorkers, DefaultMinOnlineWorkers)
}

// setDefault sets *field to v when the file did not set path.
func setDefault[T any](set map[string]bool, path string, field *T, v T) {
	if !set[path] {
		*field = v
	}
}
