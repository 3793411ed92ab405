package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/abacus-ab/abacus/api"
	"github.com/abacus-ab/abacus/ingest"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/internal/validate"
)

// role is one long-running part of serve (api, ingest or analyzer). run
// blocks until its ctx is done and returns after its own shutdown.
type role struct {
	name string
	run  func(ctx context.Context) error
}

// runRoles runs every role, each with a context of its own, until ctx is
// done or a role fails. Then it stops the roles one at a time, in the order
// given, as Prometheus's run group does: it logs "stopping <role>", cancels
// that role's context, waits for it to return and logs "<role> stopped"
// before it moves to the next. serve lists the api first, whose Run fails
// /readyz before anything else, so the load balancer stops sending
// requests while ingest still consumes what the api published. Each role
// bounds its own shutdown (SHUTDOWN_TIMEOUT for HTTP, INGEST_INSERT_TIMEOUT
// for the last batch, the analyzer's run deadline).
//
// It returns the first error a role returned, as errgroup does.
func runRoles(ctx context.Context, log *slog.Logger, roles []role) error {
	var (
		once     sync.Once
		firstErr error
		failed   = make(chan struct{})
	)
	cancels := make([]context.CancelFunc, len(roles))
	done := make([]chan error, len(roles))
	for i, r := range roles {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], done[i] = cancel, make(chan error, 1)
		go func() {
			err := r.run(rctx)
			if err != nil {
				once.Do(func() {
					firstErr = err
					close(failed)
				})
			}
			done[i] <- err
		}()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	for i, r := range roles {
		log.Info("stopping " + r.name)
		cancels[i]()
		if err := <-done[i]; err != nil {
			log.Info(r.name+" stopped", "err", err)
		} else {
			log.Info(r.name + " stopped")
		}
	}
	return firstErr
}

// newIngest builds the ingest role's consumer.
func newIngest(cfg *config, bus *eventbus.Bus, conn driver.Conn, log *slog.Logger, reg prometheus.Registerer) (*ingest.Consumer, error) {
	return ingest.New(ingest.Config{
		BatchSize:     cfg.IngestBatchSize,
		FlushInterval: cfg.IngestFlushInterval,
		Workers:       cfg.IngestWorkers,
		MaxAckPending: cfg.IngestMaxAckPending,
		AckWait:       cfg.IngestAckWait,
		InsertTimeout: cfg.IngestInsertTimeout,
	}, bus.JS, conn, log, reg)
}

// readyChecks are the checks of /readyz that every api serves: NATS and
// the registry, and ClickHouse and the ingest lag when this process runs
// ingest or the analyzer.
func readyChecks(bus *eventbus.Bus, store *registry.Store, conn driver.Conn, cons *ingest.Consumer) []api.Check {
	checks := []api.Check{
		{Name: "nats", Func: bus.Ping},
		{Name: "registry", Func: func(context.Context) error {
			if !store.Ready() {
				return errors.New("test definitions not loaded yet")
			}
			return nil
		}},
	}
	if conn != nil {
		checks = append(checks, api.Check{Name: "clickhouse", Func: conn.Ping})
	}
	if cons != nil {
		checks = append(checks, api.Check{Name: "ingest_lag", Details: func() any {
			if l, ok := cons.Lag(); ok {
				return l
			}
			return nil
		}})
	}
	return checks
}

// apiDeps is what the api role takes from serve.
type apiDeps struct {
	bus     *eventbus.Bus
	store   *registry.Store
	reports jetstream.KeyValue
	checks  []api.Check
	reg     *prometheus.Registry
}

// newAPIRole builds the api role: the key store, the cache, the rate
// limiters, the validator and the HTTP server. The role runs the server
// and the limiters' sweeps; closeAPI, which serve defers, closes the cache
// and stops the key store's watch after every role has stopped.
func newAPIRole(ctx context.Context, cfg *config, d apiDeps, log *slog.Logger) (r role, closeAPI func(), err error) {
	var closers []func()
	closeAPI = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAPI()
		}
	}()
	keys, stopKeys, err := startKeyStore(ctx, cfg, d.bus, log.With("component", "auth"))
	if err != nil {
		return role{}, nil, err
	}
	closers = append(closers, stopKeys)
	checks := append(d.checks, api.Check{Name: "api_keys", Func: func(context.Context) error {
		if !keys.Ready() {
			return errors.New("API keys not loaded yet")
		}
		return nil
	}})
	var hot *cache.Cache
	if cfg.CacheEnabled {
		if hot, err = cache.New(cfg.Cache, d.bus.NC, log.With("component", "cache")); err != nil {
			return role{}, nil, err
		}
		closers = append(closers, func() { hot.Close() })
		d.reg.MustRegister(hot)
	}
	var limiter, ipLimiter *ratelimit.Limiter
	if cfg.RateLimitEnabled {
		if limiter, err = newLimiter(ctx, cfg, d.bus, d.reg, log.With("component", "ratelimit")); err != nil {
			return role{}, nil, err
		}
		// Clients known only by IP are limited here alone: anonymous
		// traffic never writes to the shared state.
		if ipLimiter, err = ratelimit.New(ratelimit.Config{}, log.With("component", "ratelimit")); err != nil {
			return role{}, nil, err
		}
	}
	var validator *validate.Validator
	if cfg.ValidationEnabled {
		if validator, err = validate.New(cfg.Validation); err != nil {
			return role{}, nil, err
		}
	} else {
		log.Warn("input validation is off (INPUT_VALIDATION_ENABLED=false)")
	}
	srv, err := api.New(api.Config{
		Addr:            cfg.HTTPAddr,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		PublishTimeout:  cfg.PublishTimeout,
		ReportMaxAge:    cfg.ReportMaxAge,
		ShutdownTimeout: cfg.ShutdownTimeout,
		AuthDisabled:    cfg.Environment == "development",
		CORSOrigins:     cfg.CORSOrigins,
		TrustedProxies:  cfg.TrustedProxies,
		RateLimit:       cfg.RateLimit,
	}, api.Deps{
		Limiter:   limiter,
		IPLimiter: ipLimiter,
		Validator: validator,
		Keys:      keys,
		Registry:  d.store,
		Publisher: d.bus.JS,
		Requester: d.bus.NC,
		Reports:   d.reports,
		Cache:     hot,
		Checks:    checks,
		Logger:    log.With("component", "api"),
		Metrics:   d.reg,
		Gatherer:  d.reg,
	})
	if err != nil {
		return role{}, nil, err
	}
	run := func(ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return srv.Run(ctx) })
		if limiter != nil {
			g.Go(func() error { return limiter.Run(ctx) })
			g.Go(func() error { return ipLimiter.Run(ctx) })
		}
		return g.Wait()
	}
	return role{name: roleAPI, run: run}, closeAPI, nil
}
