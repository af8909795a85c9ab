package resource

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTags: the change from live to desired tags sets what differs and
// removes what the file no longer has, never AWS's own aws:* tags (the
// tags a kind keeps its own state in, such as the service's secret
// version, are not among the live tags it reports).
func TestTags(t *testing.T) {
	t.Parallel()
	got := Tags(
		map[string]string{"a": "1", "b": "2"},
		map[string]string{"a": "1", "b": "old", "gone": "y", "aws:cloudformation:stack": "z"})
	want := TagChange{Set: map[string]string{"b": "2"}, Remove: []string{"gone"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tag change (-want +got):\n%s", d)
	}
	if !Tags(map[string]string{"a": "1"}, map[string]string{"a": "1", "aws:x": "y"}).Empty() {
		t.Error("equal tags (but AWS's own) need no change")
	}
}
