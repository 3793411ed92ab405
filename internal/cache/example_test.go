package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/abacus-ab/abacus/internal/cache"
)

func ExampleCachedCodec() {
	// nil: no NATS connection, invalidations stay in this process.
	c, err := cache.New(cache.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	type page struct {
		Tests []string `json:"tests"`
	}
	// listTests answers with JSON, cached as it is sent (cache.Bytes).
	listTests := func(ctx context.Context, status string, limit int) ([]byte, error) {
		return cache.CachedCodec(ctx, c, cache.LayerQuery, cache.Key("list_tests", status, limit), cache.Bytes{},
			func(context.Context) ([]byte, error) {
				fmt.Println("querying ClickHouse")
				return json.Marshal(page{Tests: []string{"checkout-button"}})
			})
	}
	ctx := context.Background()
	p, _ := listTests(ctx, "running", 50)
	p, _ = listTests(ctx, "running", 50) // from the cache
	fmt.Println(string(p), c.Stats()[cache.LayerQuery].Hits)

	// A change to the tests makes every replica forget the lists.
	_ = c.InvalidateCategory(cache.LayerQuery)
	_, _ = listTests(ctx, "running", 50)
	// Output:
	// querying ClickHouse
	// {"tests":["checkout-button"]} 1
	// querying ClickHouse
}
