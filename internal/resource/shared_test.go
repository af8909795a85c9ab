package resource

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestShared: reads of one plan that ask the same question at once ask
// AWS once; an error is given to those waiting and then forgotten; without
// shared reads (an apply's steps) every call asks.
func TestShared(t *testing.T) {
	t.Parallel()
	x := &Context[struct{}]{erased: &Ctx{Reads: NewReads()}}
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			v, err := Shared(x, "k", func() (int, error) {
				calls.Add(1)
				<-release
				return 42, nil
			})
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls for one question, want 1", n)
	}
	for i, v := range got {
		if v != 42 {
			t.Errorf("reader %d got %d", i, v)
		}
	}

	boom := errors.New("throttled")
	if _, err := Shared(x, "e", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	v, err := Shared(x, "e", func() (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Errorf("after an error the question is asked again: %d, %v", v, err)
	}

	plain := &Context[struct{}]{erased: &Ctx{}}
	calls.Store(0)
	for range 3 {
		if _, err := Shared(plain, "k", func() (int, error) { calls.Add(1); return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("without shared reads: %d calls, want 3", n)
	}
}
