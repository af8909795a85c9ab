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
