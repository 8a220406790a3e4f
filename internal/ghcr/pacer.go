package ghcr

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// GitHub's secondary rate limit for REST endpoints: points a minute, where a
// GET, HEAD or OPTIONS request costs 1 point and any other (a DELETE) 5.
// The window has a second of margin for clock and network skew.
const (
	DefaultPointsPerWindow = 900
	DefaultPointsWindow    = time.Minute + time.Second
	readCost               = 1
	writeCost              = 5
)

// pacer is a transport that keeps the points spent in any window under
// GitHub's secondary limit, waiting before a request that would exceed it,
// so that a long deletion run is never refused for going too fast.
type pacer struct {
	next   http.RoundTripper
	budget int
	window time.Duration
	// now and sleep are the clock, replaceable in tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	spent []charge
}

type charge struct {
	at     time.Time
	points int
}

func cost(method string) int {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return readCost
	}
	return writeCost
}

func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := p.wait(req.Context(), cost(req.Method)); err != nil {
		return nil, err
	}
	return p.next.RoundTrip(req)
}

// wait blocks until points can be spent without the last window holding
// more than the budget, then spends them.
func (p *pacer) wait(ctx context.Context, points int) error {
	budget, window := p.budget, p.window
	if budget <= 0 {
		budget = DefaultPointsPerWindow
	}
	if window <= 0 {
		window = DefaultPointsWindow
	}
	now, sleepFn := p.now, p.sleep
	if now == nil {
		now = time.Now
	}
	if sleepFn == nil {
		sleepFn = sleep
	}
	for {
		p.mu.Lock()
		t := now()
		keep := p.spent[:0]
		used := 0
		for _, c := range p.spent {
			if t.Sub(c.at) < window {
				keep = append(keep, c)
				used += c.points
			}
		}
		p.spent = keep
		if used+points <= budget || len(p.spent) == 0 {
			p.spent = append(p.spent, charge{at: t, points: points})
			p.mu.Unlock()
			return nil
		}
		// Wait until the oldest charges leave the window.
		free := used + points - budget
		var until time.Time
		for _, c := range p.spent {
			free -= c.points
			if free <= 0 {
				until = c.at.Add(window)
				break
			}
		}
		p.mu.Unlock()
		if err := sleepFn(ctx, until.Sub(t)); err != nil {
			return err
		}
	}
}
