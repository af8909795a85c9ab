// Package configtest is what tests of every package share to write
// environment files: how each file begins, one valid file whose line numbers
// the tables of cases rely on, and the line editor those cases use. It is
// imported by tests only, so it is in no binary; it does not import
// internal/config, whose own tests use it.
package configtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AccountID is the AWS account of every test environment; its region is
// us-east-1.
const AccountID = "123456789012"

// Role is the ARN of the IAM role name in AccountID.
func Role(name string) string { return "arn:aws:iam::" + AccountID + ":role/" + name }

// The Prefect Cloud workspaces (their API URLs) that test environments are
// in: Workspace for most, DemoWorkspace for the demo's and the README's
// environment (the golden comments in internal/render show it).
const (
	Workspace     = "https://api.prefect.cloud/api/accounts/9b2f6c1e-4d3a-4f8b-a1c2-5e7d9f0b3a64/workspaces/3c8e1a7d-52f4-4b96-8d0e-f61a2b9c7e15"
	DemoWorkspace = "https://api.prefect.cloud/api/accounts/6a1f3c2e-8d4b-4e7a-9c10-2b5d7e9f0a11/workspaces/0c9e8d7b-6a5f-4e3d-8c2b-1a0f9e8d7c62"
)

// Head is how a test environment file begins: its name, the aws section and
// the prefect section. The worker section and the rest follow it.
type Head struct {
	Name string
	// PlanRole and ApplyRole are the roles' ARNs (empty: the deploybot-plan
	// and deploybot-apply roles in AccountID).
	PlanRole, ApplyRole string
	// APIURL is prefect.api_url (empty: Workspace).
	APIURL string
	// Pool is prefect.work_pool (empty: NAME-pool).
	Pool string
	// CreatePool writes create_work_pool: true.
	CreatePool bool
}

// YAML is the head's lines: lines 1 to 9 of the file, and line 10 with
// CreatePool.
func (h Head) YAML() string {
	or := func(s, dflt string) string {
		if s == "" {
			return dflt
		}
		return s
	}
	y := "name: " + h.Name + `
aws:
  account_id: "` + AccountID + `"
  region: us-east-1
  plan_role_arn: ` + or(h.PlanRole, Role("deploybot-plan")) + `
  apply_role_arn: ` + or(h.ApplyRole, Role("deploybot-apply")) + `
prefect:
  api_url: ` + or(h.APIURL, Workspace) + `
  work_pool: ` + or(h.Pool, h.Name+"-pool") + "\n"
	if h.CreatePool {
		y += "  create_work_pool: true\n"
	}
	return y
}

// Environment is a valid environment file, named demo, with a managed
// network and every optional section the tables of cases edit. Its line
// numbers are part of its contract: 8 is prefect.api_url, 10 to 13 the
// worker, 14 and 15 the health gate, 16 and 17 the tags, 18 and 19 the
// network (mode: managed, the last line).
var Environment = Head{Name: "demo"}.YAML() + `worker:
  image: prefecthq/prefect-aws:latest
  cpu: 512
  memory: 1024
health_gate:
  timeout: 5m
tags:
  team: data
network:
  mode: managed
`

// ExistingNetwork is Environment in network.mode existing: the subnets
// (a YAML list's items) of vpc, with a public IP (lines 19 to 22).
func ExistingNetwork(vpc, subnets string) string {
	return Edit(Environment, map[int]string{
		19: "  mode: existing",
		20: "  vpc_id: " + vpc,
		21: "  subnet_ids: [" + subnets + "]",
		22: "  assign_public_ip: true",
	})
}

// Edit returns base with the given 1-based lines replaced ("" empties a
// line); a line number past the end appends (blank lines fill any gap), so
// numbering stays predictable.
func Edit(base string, lines map[int]string) string {
	ls := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	for n, l := range lines {
		for len(ls) < n {
			ls = append(ls, "")
		}
		ls[n-1] = l
	}
	return strings.Join(ls, "\n") + "\n"
}

// Write writes content to a file called name in a new temporary directory
// of tb's and returns its path.
func Write(tb testing.TB, name, content string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
