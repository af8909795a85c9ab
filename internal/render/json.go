package render

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/deploybot/deploybot/internal/cost"
	"github.com/deploybot/deploybot/internal/plan"
)

// FormatVersion is the version of the JSON documents JSON and ReportJSON
// write. It changes only when a field is removed or changes meaning; new
// fields may be added within a version, so readers must ignore unknown
// fields.
const FormatVersion = "1"

// PlanDoc is the JSON form of a plan (format_version "1"):
//
//	{
//	  "format_version": "1",
//	  "environment": "staging",           // the environment's name
//	  "file": "environments/staging.yaml",
//	  "account": "123456789012", "region": "us-east-1",
//	  "operation": "apply",               // "apply" | "destroy"
//	  "fingerprint": "3f2a...",           // hash of the normalised plan; the PR comment's marker carries it
//	  "has_changes": true,
//	  "summary_line": "Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy.",
//	  "summary": {"add": 1, "change": 0, "replace": 0, "destroy": 0, "conflicts": 0, "unchanged": 11},
//	  "destructive": ["ecs_service.worker"],   // addresses deleted or replaced
//	  "changes": [                              // apply order (delete order for destroy), no-ops included
//	    {"address": "ecs_service.worker", "kind": "ecs_service", "name": "worker",
//	     "action": "update",                   // create | update | delete | replace | conflict | no-op
//	     "symbol": "~",
//	     "reason": "...",                      // why: replacement cause, conflict, deletion
//	     "fields": [{"path": "desired_count", "before": "1", "after": "2",
//	                 "after_unknown": false, "sensitive": false, "forces_replacement": false,
//	                 "derived": false}],          // derived: computed by deploybot from other values
//	     "before": {"desired_count": "1", ...},  // every non-sensitive attribute, before and after
//	     "after": {"desired_count": "2", ...}}
//	  ],
//	  "notes": ["..."],
//	  "cost": {"region": "us-east-1", "currency": "USD", "prices_retrieved": "2026-12-01",
//	           "monthly_delta": 32.85,           // the priced lines' sum
//	           "lines": [{"what": "1 NAT gateway", "monthly_delta": 32.85}],
//	           "unknown": [],                    // billed things without a price in the table
//	           "usage_based": ["NAT gateway data processing per GB"]}
//	}
//
// Values are the plan's normalised strings; "before" or "after" is absent
// when the field has no value on that side. A sensitive field never has
// "before" or "after", only "sensitive": true. An after value AWS decides at
// apply time is "(known after apply)" with "after_unknown": true. Lists are
// never null.
type PlanDoc struct {
	FormatVersion string      `json:"format_version"`
	Environment   string      `json:"environment"`
	File          string      `json:"file,omitempty"`
	Account       string      `json:"account,omitempty"`
	Region        string      `json:"region,omitempty"`
	Operation     string      `json:"operation"`
	Fingerprint   string      `json:"fingerprint"`
	HasChanges    bool        `json:"has_changes"`
	SummaryLine   string      `json:"summary_line"`
	Summary       SummaryDoc  `json:"summary"`
	Destructive   []string    `json:"destructive"`
	Changes       []ChangeDoc `json:"changes"`
	Notes         []string    `json:"notes"`
	// Unread are the resources the plan could not read (plan.Plan.Unread).
	Unread []plan.Unread `json:"unread,omitempty"`
	// Cost is the estimated change of the monthly bill (internal/cost).
	Cost cost.Estimate `json:"cost"`
}

// SummaryDoc counts changes by action.
type SummaryDoc struct {
	Add       int `json:"add"`
	Change    int `json:"change"`
	Replace   int `json:"replace"`
	Destroy   int `json:"destroy"`
	Conflicts int `json:"conflicts"`
	Unchanged int `json:"unchanged"`
}

// ChangeDoc is one resource's change.
type ChangeDoc struct {
	Address string            `json:"address"`
	Kind    string            `json:"kind"`
	Name    string            `json:"name,omitempty"`
	Action  string            `json:"action"`
	Symbol  string            `json:"symbol"`
	Reason  string            `json:"reason,omitempty"`
	Fields  []FieldDoc        `json:"fields"`
	Before  map[string]string `json:"before,omitempty"`
	After   map[string]string `json:"after,omitempty"`
}

// FieldDoc is one field's change.
type FieldDoc struct {
	Path              string `json:"path"`
	Before            string `json:"before,omitempty"`
	After             string `json:"after,omitempty"`
	AfterUnknown      bool   `json:"after_unknown,omitempty"`
	Sensitive         bool   `json:"sensitive,omitempty"`
	ForcesReplacement bool   `json:"forces_replacement,omitempty"`
	Derived           bool   `json:"derived,omitempty"`
}

// NewPlanDoc converts a plan to its JSON document. A plan without a stored
// fingerprint gets the computed one.
func NewPlanDoc(p *plan.Plan) PlanDoc {
	s := p.Summary()
	fp := p.Fingerprint
	if fp == "" {
		fp = p.ComputeFingerprint()
	}
	d := PlanDoc{
		FormatVersion: FormatVersion,
		Environment:   p.Environment,
		File:          p.File,
		Account:       p.Account,
		Region:        p.Region,
		Operation:     string(p.Operation),
		Fingerprint:   fp,
		HasChanges:    p.HasChanges(),
		SummaryLine:   summaryLine(p),
		Summary: SummaryDoc{Add: s.Add, Change: s.Change, Replace: s.Replace, Destroy: s.Destroy,
			Conflicts: s.Conflicts, Unchanged: s.Unchanged},
		Destructive: nonNil(p.Destructive()),
		Changes:     []ChangeDoc{},
		Notes:       nonNil(p.Notes),
		Unread:      p.Unread,
		Cost:        cost.Of(p),
	}
	for _, c := range p.Changes {
		cd := ChangeDoc{
			Address: c.Address, Kind: c.Kind, Name: c.Name, Action: string(c.Action),
			Symbol: c.Action.Symbol(), Reason: c.Reason, Fields: []FieldDoc{},
			Before: c.Before, After: c.After,
		}
		for _, f := range c.Fields {
			fd := FieldDoc{Path: f.Path, Sensitive: f.Sensitive, ForcesReplacement: f.ForcesReplacement, Derived: f.Derived}
			if !f.Sensitive {
				fd.Before, fd.After = f.Before, f.After
				fd.AfterUnknown = f.After == plan.Unknown
			}
			cd.Fields = append(cd.Fields, fd)
		}
		d.Changes = append(d.Changes, cd)
	}
	return d
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JSON renders the plan as an indented PlanDoc, ending in a newline.
func JSON(p *plan.Plan) ([]byte, error) {
	b, err := json.MarshalIndent(NewPlanDoc(p), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan of %s as JSON: %w", p.Environment, err)
	}
	return append(b, '\n'), nil
}

// ReportDoc is the JSON form of an apply or destroy report (format_version
// "1"). Times are RFC 3339 in UTC and absent when unknown; durations are
// whole milliseconds. "plan" is the PlanDoc of the plan that was applied.
type ReportDoc struct {
	FormatVersion string         `json:"format_version"`
	Environment   string         `json:"environment"`
	Operation     string         `json:"operation"`
	Status        string         `json:"status"` // succeeded | no_changes | failed | rolled_back | refused
	Headline      string         `json:"headline"`
	Error         string         `json:"error,omitempty"`
	StartedAt     string         `json:"started_at,omitempty"`
	FinishedAt    string         `json:"finished_at,omitempty"`
	DurationMS    int64          `json:"duration_ms"`
	Steps         []StepDoc      `json:"steps"`
	Deployment    *DeploymentDoc `json:"deployment,omitempty"`
	Rollback      *DeploymentDoc `json:"rollback,omitempty"`
	Gate          *GateDoc       `json:"gate,omitempty"`
	Plan          *PlanDoc       `json:"plan,omitempty"`
}

// StepDoc is one resource's outcome.
type StepDoc struct {
	Address    string `json:"address"`
	Action     string `json:"action"`
	Status     string `json:"status"` // done | failed | skipped
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// DeploymentDoc is the ECS deployment the apply caused.
type DeploymentDoc struct {
	Cluster                string `json:"cluster"`
	Service                string `json:"service"`
	DeploymentID           string `json:"deployment_id,omitempty"`
	TaskDefinition         string `json:"task_definition"`
	PreviousTaskDefinition string `json:"previous_task_definition,omitempty"`
	WorkerPrefix           string `json:"worker_prefix,omitempty"`
	StartedAt              string `json:"started_at,omitempty"`
	Status                 string `json:"status"`
}

// GateDoc is the Prefect health gate's outcome.
type GateDoc struct {
	Passed               bool             `json:"passed"`
	Reason               string           `json:"reason"`
	WorkPoolURL          string           `json:"work_pool_url,omitempty"`
	Workers              []WorkerDoc      `json:"workers"`
	StoppedTasks         []StoppedTaskDoc `json:"stopped_tasks"`
	ServiceEvents        []string         `json:"service_events"`
	RolledBack           bool             `json:"rolled_back"`
	RolledBackTo         string           `json:"rolled_back_to,omitempty"`
	NothingToRollBack    bool             `json:"nothing_to_roll_back"`
	RestoredWorkerOnline bool             `json:"restored_worker_online"`
	PrunedWorkers        int              `json:"pruned_workers"`
	Warnings             []string         `json:"warnings"`
	DurationMS           int64            `json:"duration_ms"`
	// Stages are the gate's checks in order; FlowRun its smoke flow run.
	Stages  []StageDoc  `json:"stages,omitempty"`
	FlowRun *FlowRunDoc `json:"flow_run,omitempty"`
}

// StageDoc is one check of the health gate.
type StageDoc struct {
	Name       string `json:"name"`
	Passed     bool   `json:"passed"`
	Reason     string `json:"reason"`
	DurationMS int64  `json:"duration_ms"`
}

// FlowRunDoc is the gate's smoke flow run: the gate's own record (its
// fields and their JSON names are plan.GateFlowRun's; its duration there is
// in nanoseconds), with the duration in milliseconds like the document's
// other durations.
type FlowRunDoc struct {
	*plan.GateFlowRun
	DurationMS int64 `json:"duration_ms"`
}

// WorkerDoc is one Prefect worker as the gate saw it last.
type WorkerDoc struct {
	Name          string `json:"name"`
	Status        string `json:"status"`
	LastHeartbeat string `json:"last_heartbeat,omitempty"`
	NewRevision   bool   `json:"new_revision"`
}

// StoppedTaskDoc is a stopped ECS task of the new revision.
type StoppedTaskDoc struct {
	TaskARN         string `json:"task_arn"`
	StoppedReason   string `json:"stopped_reason"`
	StopCode        string `json:"stop_code,omitempty"`
	ExitCode        *int32 `json:"exit_code,omitempty"`
	ContainerReason string `json:"container_reason,omitempty"`
}

// NewReportDoc converts a report to its JSON document.
func NewReportDoc(r *plan.Report) ReportDoc {
	d := ReportDoc{
		FormatVersion: FormatVersion,
		Environment:   r.Environment,
		Operation:     string(r.Operation),
		Status:        string(r.Status),
		Headline:      statusHeadline(r),
		Error:         r.Error,
		StartedAt:     formatTime(r.StartedAt),
		FinishedAt:    formatTime(r.FinishedAt),
		Steps:         []StepDoc{},
	}
	if !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() {
		d.DurationMS = ms(r.FinishedAt.Sub(r.StartedAt))
	}
	for _, s := range r.Steps {
		d.Steps = append(d.Steps, StepDoc{Address: s.Address, Action: string(s.Action), Status: s.Status,
			DurationMS: ms(s.Duration), Error: s.Error})
	}
	d.Deployment = deploymentDoc(r.Deployment)
	d.Rollback = deploymentDoc(r.Rollback)
	if g := r.Gate; g != nil {
		gd := &GateDoc{Passed: g.Passed, Reason: g.Reason, WorkPoolURL: g.WorkPoolURL, Workers: []WorkerDoc{},
			StoppedTasks: []StoppedTaskDoc{}, ServiceEvents: nonNil(g.ServiceEvents), RolledBack: g.RolledBack,
			RolledBackTo: g.RolledBackTo, NothingToRollBack: g.NothingToRollBack,
			RestoredWorkerOnline: g.RestoredWorkerOnline, PrunedWorkers: g.PrunedWorkers,
			Warnings: nonNil(g.Warnings), DurationMS: ms(g.Duration)}
		for _, w := range g.Workers {
			gd.Workers = append(gd.Workers, WorkerDoc{Name: w.Name, Status: w.Status,
				LastHeartbeat: formatTime(w.LastHeartbeat), NewRevision: w.NewRevision})
		}
		for _, st := range g.StoppedTasks {
			gd.StoppedTasks = append(gd.StoppedTasks, StoppedTaskDoc(st))
		}
		for _, sg := range g.Stages {
			gd.Stages = append(gd.Stages, StageDoc{Name: sg.Name, Passed: sg.Passed, Reason: sg.Reason, DurationMS: ms(sg.Duration)})
		}
		if fr := g.FlowRun; fr != nil {
			gd.FlowRun = &FlowRunDoc{GateFlowRun: fr, DurationMS: ms(fr.Duration)}
		}
		d.Gate = gd
	}
	if r.Plan != nil {
		pd := NewPlanDoc(r.Plan)
		d.Plan = &pd
	}
	return d
}

func deploymentDoc(dp *plan.DeploymentInfo) *DeploymentDoc {
	if dp == nil {
		return nil
	}
	return &DeploymentDoc{Cluster: dp.Cluster, Service: dp.Service, DeploymentID: dp.DeploymentID,
		TaskDefinition: dp.TaskDefinition, PreviousTaskDefinition: dp.PreviousTaskDefinition,
		WorkerPrefix: dp.WorkerPrefix, StartedAt: formatTime(dp.StartedAt), Status: dp.Status}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// ReportJSON renders the report as an indented ReportDoc, ending in a
// newline.
func ReportJSON(r *plan.Report) ([]byte, error) {
	b, err := json.MarshalIndent(NewReportDoc(r), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report of %s as JSON: %w", r.Environment, err)
	}
	return append(b, '\n'), nil
}
