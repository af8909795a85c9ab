package plan

import "testing"

func TestFingerprintIgnoresOrderAndUnchangedResources(t *testing.T) {
	a := &Plan{Environment: "staging", Operation: OpApply, Changes: []Change{
		{Address: "ecs_cluster.main", Action: NoOp},
		{Address: "task_definition.worker", Action: Update, Fields: []FieldChange{{Path: "cpu", Before: "512", After: "1024"}, {Path: "container.image", Before: "a", After: "b"}}},
		{Address: "ecs_service.worker", Action: Update, Fields: []FieldChange{{Path: "task_definition", Before: "x:1", After: Unknown}}},
	}}
	b := &Plan{Environment: "staging", Operation: OpApply, Changes: []Change{
		{Address: "ecs_service.worker", Action: Update, Fields: []FieldChange{{Path: "task_definition", Before: "x:1", After: Unknown}}},
		{Address: "task_definition.worker", Action: Update, Fields: []FieldChange{{Path: "container.image", Before: "a", After: "b"}, {Path: "cpu", Before: "512", After: "1024"}}},
	}}
	if a.ComputeFingerprint() != b.ComputeFingerprint() {
		t.Fatal("the same changes in another order (or with no-ops) must have the same fingerprint")
	}
	c := *b
	c.Changes = append([]Change(nil), b.Changes...)
	c.Changes[1].Fields = []FieldChange{{Path: "cpu", Before: "512", After: "2048"}}
	if c.ComputeFingerprint() == b.ComputeFingerprint() {
		t.Fatal("a different change must change the fingerprint")
	}
	d := *b
	d.Operation = OpDestroy
	if d.ComputeFingerprint() == b.ComputeFingerprint() {
		t.Fatal("the operation is part of the fingerprint")
	}
	if len(a.ComputeFingerprint()) != 16 {
		t.Fatalf("fingerprint %q is not 16 hex digits", a.ComputeFingerprint())
	}
}

func TestSummaryAndDestructive(t *testing.T) {
	p := &Plan{Changes: []Change{
		{Address: "a", Action: Create}, {Address: "b", Action: Update}, {Address: "c", Action: Delete},
		{Address: "d", Action: Replace}, {Address: "e", Action: Conflict}, {Address: "f", Action: NoOp},
	}}
	s := p.Summary()
	if s != (Summary{Add: 1, Change: 1, Destroy: 1, Replace: 1, Conflicts: 1, Unchanged: 1}) {
		t.Fatalf("summary %+v", s)
	}
	if got := p.Destructive(); len(got) != 2 || got[0] != "c" || got[1] != "d" {
		t.Fatalf("destructive %v", got)
	}
	if !p.HasChanges() || (&Plan{Changes: []Change{{Action: NoOp}}}).HasChanges() {
		t.Fatal("HasChanges")
	}
	for a, sym := range map[Action]string{Create: "+", Update: "~", Delete: "-", Replace: "-/+", Conflict: "×", NoOp: " "} {
		if a.Symbol() != sym {
			t.Errorf("%s.Symbol() = %q, want %q", a, a.Symbol(), sym)
		}
	}
}
