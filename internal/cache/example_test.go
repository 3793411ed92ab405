package cache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/abacus-ab/abacus/internal/cache"
)

func ExampleCached() {
	// nil: no NATS connection, invalidations stay in this process.
	c, err := cache.New(cache.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	type page struct{ Tests []string }
	listTests := func(ctx context.Context, status string, limit int) (page, error) {
		return cache.Cached(ctx, c, cache.LayerQuery, cache.Key("list_tests", status, limit),
			func(context.Context) (page, error) {
				fmt.Println("querying ClickHouse")
				return page{Tests: []string{"checkout-button"}}, nil
			})
	}
	ctx := context.Background()
	p, _ := listTests(ctx, "running", 50)
	p, _ = listTests(ctx, "running", 50) // from the cache
	fmt.Println(p.Tests, c.Stats()[cache.LayerQuery].Hits)

	// A change to the tests makes every replica forget the lists.
	_ = c.InvalidateCategory(cache.LayerQuery)
	_, _ = listTests(ctx, "running", 50)
	// Output:
	// querying ClickHouse
	// [checkout-button] 1
	// querying ClickHouse
}
