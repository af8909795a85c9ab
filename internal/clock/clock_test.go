package clock

import (
	"context"
	"testing"
	"time"
)

func TestVirtualSleepAdvancesWithoutWaiting(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	if err := v.Sleep(context.Background(), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	v.Advance(30 * time.Second)
	if got := v.Now().Sub(start); got != 2*time.Minute {
		t.Fatalf("advanced %v, want 2m", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Sleep(ctx, time.Hour); err == nil || v.Now().Sub(start) != 2*time.Minute {
		t.Fatal("a cancelled sleep must fail and not move time")
	}
	if err := (Real{}).Sleep(ctx, time.Hour); err == nil {
		t.Fatal("a cancelled real sleep must return at once with an error")
	}
}

func TestVirtualTimersRunInOrderAtTheirInstant(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	var got []string
	record := func(name string) func() {
		return func() { got = append(got, name+"@"+v.Now().Sub(start).String()) }
	}
	v.AfterFunc(20*time.Second, record("b"))
	v.AfterFunc(10*time.Second, func() {
		record("a")()
		v.AfterFunc(5*time.Second, record("a2")) // set from a timer, due on the same Advance
	})
	stop := v.AfterFunc(15*time.Second, record("stopped"))
	if !stop() {
		t.Fatal("stop of a pending timer said it had run")
	}
	v.AfterFunc(time.Minute, record("later"))
	_ = v.Sleep(context.Background(), 30*time.Second)
	want := []string{"a@10s", "a2@15s", "b@20s"}
	if len(got) != len(want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %v, want %v", got, want)
		}
	}
	if v.Now().Sub(start) != 30*time.Second {
		t.Fatalf("now %v", v.Now().Sub(start))
	}
	// Advancing from inside a timer moves time without running timers
	// recursively (no deadlock).
	v.AfterFunc(time.Second, func() { v.Advance(time.Second) })
	v.Advance(time.Second)
	if got := v.Now().Sub(start); got != 32*time.Second {
		t.Fatalf("now %v after a nested advance", got)
	}
}
