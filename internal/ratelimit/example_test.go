package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacus-ab/abacus/internal/ratelimit"
)

func ExampleLimiter_Allow() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := ratelimit.New(ratelimit.Config{Now: func() time.Time { return start }}, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	// Plans are built once, e.g. one per route.
	global, _ := l.Plan(ratelimit.Global())
	upload, _ := l.Plan(ratelimit.Global(), ratelimit.Standard("POST /x", 2, 0, 0))

	ctx := context.Background()
	for range 3 {
		d := l.Allow(ctx, upload, "key_abc", 1)
		fmt.Println("POST /x allowed:", d.Allowed, "retry after:", d.RetryAfter)
	}
	// The denied request consumed nothing: 3 of the global windows' tokens
	// are used after this one.
	d := l.Allow(ctx, global, "key_abc", 1)
	for _, w := range d.Windows() {
		fmt.Printf("%s %s: %d of %d left, full again in %v\n", w.Policy, w.Window, w.Remaining, w.Limit, w.Reset.Sub(start))
	}
	// Output:
	// POST /x allowed: true retry after: 0s
	// POST /x allowed: true retry after: 0s
	// POST /x allowed: false retry after: 30s
	// global minute: 57 of 60 left, full again in 3s
	// global hour: 997 of 1000 left, full again in 10.8s
	// global day: 9997 of 10000 left, full again in 25.92s
}
