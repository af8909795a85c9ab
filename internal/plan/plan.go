// Package plan is pure data: what deploybot intends to do to one environment.
// It is built by the engine and rendered by internal/render; it imports
// nothing of ours, so that every view (terminal, PR comment, JSON) shows the
// same value.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// Action is what happens to one resource.
type Action string

const (
	NoOp    Action = "no-op"
	Create  Action = "create"
	Update  Action = "update"
	Delete  Action = "delete"
	Replace Action = "replace" // delete then create (or create then delete)
	// Conflict: a resource exists under our name without our tags; deploybot
	// never takes it over. A plan with a conflict cannot be applied.
	Conflict Action = "conflict"
	// Rollback is a step of a report, never of a plan: the health gate (or
	// ECS's circuit breaker) pointed the service back at the previous
	// revision.
	Rollback Action = "rollback"
)

// Symbol is the Terraform-style diff marker.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Delete:
		return "-"
	case Replace:
		return "-/+"
	case Conflict:
		// Not "!": the PR comment's diff blocks use "!" for an update, the
		// one mark GitHub's diff highlighting colours as a change.
		return "×"
	case Rollback:
		return "↩"
	default:
		return " "
	}
}

// Unknown is the value of a field that AWS decides at apply time.
const Unknown = "(known after apply)"

// SensitiveChanged is all a plan ever shows of a sensitive value.
const SensitiveChanged = "(sensitive value changed)"

// FieldChange is one attribute's before and after. Values are normalised
// strings (numbers in decimal, lists and maps as canonical JSON).
type FieldChange struct {
	Path   string `json:"path"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Sensitive values are never stored here: Before/After are empty and
	// renderers print SensitiveChanged.
	Sensitive bool `json:"sensitive,omitempty"`
	// ForcesReplacement marks the fields AWS cannot change in place.
	ForcesReplacement bool `json:"forces_replacement,omitempty"`
	// Derived marks a value deploybot computes from other values rather
	// than one the environment file states (a hash of the container
	// definition, say): its change follows from the changes a person made,
	// so views show it after them.
	Derived bool `json:"derived,omitempty"`
}

// Change is the plan for one resource.
type Change struct {
	Address string `json:"address"` // e.g. "ecs_service.worker"
	Kind    string `json:"kind"`    // e.g. "ecs_service"
	Name    string `json:"name"`    // the AWS name or id
	Action  Action `json:"action"`
	// Reason says why: for a replacement, which field forces it; for a
	// conflict, what is in the way; for a delete, why it goes.
	Reason string        `json:"reason,omitempty"`
	Fields []FieldChange `json:"fields,omitempty"`
	// Before and After are the resource's attributes (the same paths and
	// normalised values as Fields) before and after the change, for every
	// resource of the plan including the unchanged ones, so that a view can
	// tell what a change means beyond its diff (the cost estimate needs the
	// task size of a service whose desired count changed). Before is empty
	// for a create, After for a delete. Sensitive attributes are never here.
	// They are not part of the fingerprint: only Fields are.
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
}

// Operation is what the plan is for.
type Operation string

const (
	OpApply   Operation = "apply"
	OpDestroy Operation = "destroy"
)

// Plan is an ordered list of changes for one environment. Changes are in
// apply order (dependencies first); a destroy plan is in delete order.
type Plan struct {
	Environment string    `json:"environment"`
	File        string    `json:"file"`
	Account     string    `json:"account"`
	Region      string    `json:"region"`
	Operation   Operation `json:"operation"`
	Changes     []Change  `json:"changes"`
	// Notes are things a reviewer should know that are not changes
	// (e.g. why the worker gets a public IP).
	Notes []string `json:"notes,omitempty"`
	// Unread are the resources the plan could not read (no credentials for
	// their service: a plan without the Prefect API key), so their changes
	// are not in it. An apply refuses such a plan.
	Unread []Unread `json:"unread,omitempty"`
	// Fingerprint is Fingerprint() at build time, stored for reports.
	Fingerprint string `json:"fingerprint"`
}

// Unread is a resource a plan could not read, and why.
type Unread struct {
	Address string `json:"address"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Reason  string `json:"reason"`
}

// Summary counts changes by action.
type Summary struct {
	Add       int `json:"add"`
	Change    int `json:"change"`
	Destroy   int `json:"destroy"`
	Replace   int `json:"replace"`
	Conflicts int `json:"conflicts"`
	Unchanged int `json:"unchanged"`
}

// Summary counts the plan's changes. A replacement counts once as Replace
// (renderers say "N to replace").
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Add++
		case Update:
			s.Change++
		case Delete:
			s.Destroy++
		case Replace:
			s.Replace++
		case Conflict:
			s.Conflicts++
		default:
			s.Unchanged++
		}
	}
	return s
}

// HasChanges says whether applying the plan would do anything.
func (p *Plan) HasChanges() bool {
	s := p.Summary()
	return s.Add+s.Change+s.Destroy+s.Replace+s.Conflicts > 0
}

// Destructive returns the addresses the plan deletes or replaces.
func (p *Plan) Destructive() []string {
	var out []string
	for _, c := range p.Changes {
		if c.Action == Delete || c.Action == Replace {
			out = append(out, c.Address)
		}
	}
	return out
}

// ComputeFingerprint hashes the normalised plan: environment, operation and
// every non-no-op change with its fields, in a canonical order. It does not
// depend on map order, timestamps, or unchanged resources, so two plans of the
// same intended change have the same fingerprint across runs and machines.
func (p *Plan) ComputeFingerprint() string {
	type fc struct {
		P, B, A string
		S, F    bool
	}
	type ch struct {
		Addr, Act string
		F         []fc
	}
	var cs []ch
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		x := ch{Addr: c.Address, Act: string(c.Action)}
		for _, f := range c.Fields {
			x.F = append(x.F, fc{f.Path, f.Before, f.After, f.Sensitive, f.ForcesReplacement})
		}
		sort.Slice(x.F, func(i, j int) bool { return x.F[i].P < x.F[j].P })
		cs = append(cs, x)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Addr < cs[j].Addr })
	// A plan that could not read a resource is another plan than one that
	// read it and found nothing to change.
	var unread []string
	for _, u := range p.Unread {
		unread = append(unread, u.Address)
	}
	sort.Strings(unread)
	b, _ := json.Marshal(struct {
		Env, Op string
		C       []ch
		U       []string `json:",omitempty"`
	}{p.Environment, string(p.Operation), cs, unread})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// Deletes says whether the plan deletes the resource at address (or
// replaces it, which deletes it first).
func (p *Plan) Deletes(address string) bool {
	for _, c := range p.Changes {
		if c.Address == address {
			return c.Action == Delete || c.Action == Replace
		}
	}
	return false
}
