package awssim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/deploybot/deploybot/internal/clock"
)

var simStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestWorld(t *testing.T, opts ...Option) (*World, *clock.Virtual) {
	t.Helper()
	c := clock.NewVirtual(simStart)
	return New(c, opts...), c
}

// call is one SDK call of a table of calls and the error codes they
// answer: f (a client's method) with in, which the table builds; the call
// is made when its row is checked.
func call[I, O, P any](ctx context.Context, f func(context.Context, *I, ...func(*P)) (*O, error), in *I) func() error {
	return func() error {
		_, err := f(ctx, in)
		return err
	}
}

// pager is an SDK paginator whose pages are O (P is its client's Options).
type pager[O, P any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*P)) (O, error)
}

// allPages reads every page of p, failing the test on an error.
func allPages[O, P any](t *testing.T, p pager[O, P]) []O {
	t.Helper()
	var pages []O
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
	}
	return pages
}

// errCode returns the AWS error code of err ("" for nil), failing the test
// for errors that are not API errors.
func errCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode()
}

func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

var bg = context.Background()

func TestInventoryAndRegisteredListers(t *testing.T) {
	t.Parallel()
	w, _ := newTestWorld(t)
	RegisterInventory(func(w *World) []Item {
		return []Item{{Service: "zz-test", Type: "thing", ID: "t-1", Tags: map[string]string{"deploybot:environment": "other"}}}
	})
	t.Cleanup(func() {
		inventoryMu.Lock()
		inventoryFuncs = inventoryFuncs[:len(inventoryFuncs)-1]
		inventoryMu.Unlock()
	})
	c := cloudwatchlogs.NewFromConfig(w.Config())
	if _, err := c.CreateLogGroup(bg, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/deploybot/staging/worker"),
		Tags: map[string]string{"deploybot:environment": "staging"}}); err != nil {
		t.Fatal(err)
	}
	got := w.Inventory()
	want := []Item{
		{Service: "logs", Type: "log-group", ID: "arn:aws:logs:us-east-1:123456789012:log-group:/deploybot/staging/worker", Tags: map[string]string{"deploybot:environment": "staging"}},
		{Service: "zz-test", Type: "thing", ID: "t-1", Tags: map[string]string{"deploybot:environment": "other"}},
	}
	var mine []Item
	for _, it := range got {
		if it.Service == "logs" || it.Service == "zz-test" {
			mine = append(mine, it)
		}
	}
	if diff := cmp.Diff(want, mine); diff != "" {
		t.Fatalf("inventory (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], w.TaggedFor("other")); diff != "" {
		t.Fatalf("TaggedFor (-want +got):\n%s", diff)
	}
}
