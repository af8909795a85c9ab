package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/plan"
	"github.com/deploybot/deploybot/internal/resource"
)

// batchKind is a fakeKind that is a resource.BatchReader: it logs the
// addresses of each ReadAll and each single Read, and can fail or be
// throttled on ReadAll, or return an address it was not asked for.
type batchKind struct {
	fakeKind
	mu        *sync.Mutex
	readAlls  *[][]string
	reads     *[]string
	err       error
	throttles *int
	extra     string
}

func newBatchKind(a *fakeAccount) batchKind {
	return batchKind{fakeKind: fakeKind{a}, mu: &sync.Mutex{}, readAlls: &[][]string{}, reads: &[]string{}, throttles: new(int)}
}

func (k batchKind) Read(ctx context.Context, x *resource.Ctx, r *resource.Resource) (*resource.Live, error) {
	k.mu.Lock()
	*k.reads = append(*k.reads, r.Address)
	k.mu.Unlock()
	return k.fakeKind.Read(ctx, x, r)
}

func (k batchKind) ReadAll(ctx context.Context, x *resource.Ctx, rs []*resource.Resource) (map[string]*resource.Live, error) {
	k.mu.Lock()
	var addrs []string
	for _, r := range rs {
		addrs = append(addrs, r.Address)
	}
	*k.readAlls = append(*k.readAlls, addrs)
	throttled := *k.throttles > 0
	if throttled {
		*k.throttles--
	}
	k.mu.Unlock()
	if throttled {
		return nil, &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	}
	if k.err != nil {
		return nil, k.err
	}
	out := map[string]*resource.Live{}
	for _, r := range rs {
		live, err := k.fakeKind.Read(ctx, x, r)
		if err != nil {
			return nil, err
		}
		if live != nil {
			out[r.Address] = live
		}
	}
	if k.extra != "" {
		out[k.extra] = &resource.Live{ID: "x", Ours: true}
	}
	return out, nil
}

// batchRes builds a resource "batch.NAME" of the batch kind.
func batchRes(name string, deps ...string) resource.Resource {
	r := res(name, map[string]string{"v": "1"}, deps...)
	r.Address, r.Kind = "batch."+name, "batch"
	return r
}

// TestPlanReadsABatchKindWithOneReadAll: the plan reads every resource of a
// resource.BatchReader kind, desired and leftover, with one ReadAll (in
// plan order) and no single Read; other kinds are still read one by one.
func TestPlanReadsABatchKindWithOneReadAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := newBatchKind(f.acct)
	f.eng.Kinds["batch"] = k
	leftover := batchRes("old")
	rs := append(diamond(), batchRes("b", "fake.net"), batchRes("a"))
	f.apply(t, append(append([]resource.Resource(nil), rs...), leftover))
	*k.readAlls, *k.reads = nil, nil

	p, err := f.eng.plan(context.Background(), f.stack(rs, leftover), plan.OpApply)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([][]string{{"batch.a", "batch.old", "batch.b"}}, *k.readAlls); d != "" {
		t.Errorf("ReadAll calls (-want +got):\n%s", d)
	}
	if len(*k.reads) != 0 {
		t.Errorf("single Reads during the plan: %v", *k.reads)
	}
	var got []string
	for _, c := range p.Plan.Changes {
		if c.Kind == "batch" {
			got = append(got, c.Action.Symbol()+" "+c.Address)
		}
	}
	if d := cmp.Diff([]string{"- batch.old", "  batch.a", "  batch.b"}, got); d != "" {
		t.Errorf("plan of the batch kind (-want +got):\n%s", d)
	}
}

func TestPlanBatchReadFailures(t *testing.T) {
	t.Parallel()
	denied := &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not allowed"}
	tests := []struct {
		name      string
		desired   []resource.Resource
		absent    []resource.Resource
		err       error
		throttles int
		extra     string
		wantErr   string // "" = the plan succeeds
		wantNotes []string
		wantCalls int
	}{
		{name: "a failed ReadAll fails the plan once, naming every address",
			desired: []resource.Resource{batchRes("a"), batchRes("b")}, err: denied,
			wantErr: "read batch.a, batch.b: api error UnauthorizedOperation: not allowed", wantCalls: 1},
		{name: "leftovers alone that cannot be read are notes",
			absent: []resource.Resource{batchRes("x"), batchRes("y")}, err: denied,
			wantNotes: []string{
				"could not check whether batch.x (no longer asked for) is left over: read batch.x, batch.y: api error UnauthorizedOperation: not allowed",
				"could not check whether batch.y (no longer asked for) is left over: read batch.x, batch.y: api error UnauthorizedOperation: not allowed"},
			wantCalls: 1},
		{name: "a throttled ReadAll is retried whole",
			desired: []resource.Resource{batchRes("a"), batchRes("b")}, throttles: 2, wantCalls: 3},
		{name: "an address not asked for is an error",
			desired: []resource.Resource{batchRes("a")}, extra: "batch.stranger",
			wantErr: "read batch kinds: ReadAll returned batch.stranger, which is not one of them", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			k := newBatchKind(f.acct)
			k.err, k.extra, *k.throttles = tc.err, tc.extra, tc.throttles
			f.eng.Kinds["batch"] = k
			p, err := f.eng.plan(context.Background(), f.stack(append(diamond(), tc.desired...), tc.absent...), plan.OpApply)
			if len(*k.readAlls) != tc.wantCalls {
				t.Errorf("ReadAll calls: %v, want %d", *k.readAlls, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want exactly %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantNotes, p.Plan.Notes); d != "" {
				t.Errorf("notes (-want +got):\n%s", d)
			}
			var creates []string
			for _, c := range p.Plan.Changes {
				if c.Kind == "batch" && c.Action == plan.Create {
					creates = append(creates, c.Address)
				}
			}
			var want []string
			for _, r := range tc.desired {
				want = append(want, r.Address)
			}
			if d := cmp.Diff(want, creates); d != "" {
				t.Errorf("creates (-want +got):\n%s", d)
			}
		})
	}
}
