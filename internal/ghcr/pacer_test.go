package ghcr

import (
	"context"
	"testing"
	"time"
)

func TestPacerKeepsEveryWindowUnderTheBudget(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var waits []time.Duration
	p := &pacer{budget: 900, window: time.Minute,
		now: func() time.Time { return now },
		sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			now = now.Add(d)
			return nil
		}}
	// 180 DELETEs (5 points each) fill the minute; the 181st waits for the
	// first to leave the window, a GET after it for the second.
	for range 180 {
		if err := p.wait(context.Background(), writeCost); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if len(waits) != 0 {
		t.Fatalf("waited %v within the budget", waits)
	}
	p.wait(context.Background(), writeCost)
	if len(waits) != 1 || waits[0] != time.Minute-18*time.Second {
		t.Fatalf("waits = %v, want one of 42s (until the first DELETE is a minute old)", waits)
	}
	p.wait(context.Background(), readCost)
	if len(waits) != 2 || waits[1] != 100*time.Millisecond {
		t.Fatalf("waits = %v, want then 100ms", waits)
	}
	// Whatever the order, no window of a minute ever holds more than 900.
	for i := range p.spent {
		sum := 0
		for _, c := range p.spent[i:] {
			if c.at.Sub(p.spent[i].at) < time.Minute {
				sum += c.points
			}
		}
		if sum > 900 {
			t.Fatalf("%d points in the minute from %s", sum, p.spent[i].at)
		}
	}
	if cost("DELETE") != 5 || cost("GET") != 1 || cost("HEAD") != 1 {
		t.Error("costs are not GitHub's")
	}
}
