// Command floor is the floor of the data plane benchmark
// (deploy/bench/dataplane.sh): a bare Echo server whose assign and OFREP
// handlers only decode the user from the body and hash it with
// experiment.Bucket, with no authentication, rate limit, validation, lookup
// or publishing. What Abacus answers per second is compared with it.
//
//	floor -addr 127.0.0.1:18480
//
// It listens on loopback only and exits on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/abacus-ab/abacus/experiment"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18480", "loopback host:port to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("parsing -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: not a loopback address", *addr)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.POST("/api/ab-testing/tests/:test_id/assign", assign)
	e.POST("/ofrep/v1/evaluate/flags/:key", evaluate)

	errc := make(chan error, 1)
	go func() { errc <- e.Start(*addr) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// variant is the two-way 50/50 split of the benchmark's test.
func variant(bucket uint64) string {
	if bucket < experiment.Buckets/2 {
		return "control"
	}
	return "treatment"
}

func assign(c echo.Context) error {
	var req struct {
		UserID string `json:"user_id"`
	}
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil || req.UserID == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "want {\"user_id\": ...}")
	}
	id := c.Param("test_id")
	return c.JSON(http.StatusOK, map[string]string{
		"test_id": id, "user_id": req.UserID, "variant_id": variant(experiment.Bucket(id, req.UserID)),
	})
}

func evaluate(c echo.Context) error {
	var req struct {
		Context struct {
			TargetingKey string `json:"targetingKey"`
		} `json:"context"`
	}
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil || req.Context.TargetingKey == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "want {\"context\": {\"targetingKey\": ...}}")
	}
	key := c.Param("key")
	v := variant(experiment.Bucket(key, req.Context.TargetingKey))
	return c.JSON(http.StatusOK, map[string]string{"key": key, "value": v, "variant": v, "reason": "SPLIT"})
}
