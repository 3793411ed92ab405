// Command abacus is the Abacus experimentation service: one binary with the
// subcommands serve, migrate and version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/abacus-ab/abacus/analysis"
	"github.com/abacus-ab/abacus/api"
	"github.com/abacus-ab/abacus/ingest"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/internal/validate"
	"github.com/abacus-ab/abacus/migrations"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "abacus:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: abacus <command> [flags]

commands:
  serve     run the service (API, ingest and analyzer roles; see serve --help)
  migrate   apply ClickHouse migrations and exit
  keys      create, list, revoke and rotate API keys (see keys --help)
  loadgen   drive a running abacus with simulated users and check the counts (see loadgen --help)
  version   print the version
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := loadConfig(args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, newLogger(cfg, stderr))
	case "migrate":
		cfg, err := loadConfig(args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return migrate(ctx, cfg, newLogger(cfg, stderr))
	case "loadgen":
		return runLoadgen(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "abacus", buildVersion())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.Environment == "development" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// Durations as "1.5s", not as nanoseconds, for people and log queries.
	opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func migrate(ctx context.Context, cfg *config, log *slog.Logger) error {
	opts, err := chdb.ParseURL(cfg.ClickHouseURL)
	if err != nil {
		return err
	}
	return chdb.Migrate(ctx, opts, migrations.FS, log.With("component", "migrate"))
}

// serve wires the roles in cfg.Targets and runs them until ctx is done.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	log.Info("abacus starting", append([]any{"version", buildVersion()}, cfg.summary()...)...)

	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	bus, err := eventbus.Connect(ctx, eventbus.Config{
		URL:             cfg.NATSURL,
		CredsFile:       cfg.NATSCreds,
		DataDir:         cfg.DataDir,
		EmbeddedListen:  cfg.NATSEmbeddedAddr,
		Replicas:        cfg.NATSReplicas,
		StreamMaxAge:    cfg.StreamMaxAge,
		DuplicateWindow: cfg.DuplicateWindow,
	}, log.With("component", "eventbus"))
	if err != nil {
		return err
	}
	defer func() {
		bus.Close()
		log.Info("nats connection closed")
	}()
	if err := bus.Provision(ctx); err != nil {
		return err
	}

	// Only ingest and the analyzer use ClickHouse: an API-only replica
	// neither opens it nor reports it in /readyz, so a ClickHouse outage
	// does not take the API out of rotation.
	var conn driver.Conn
	if cfg.has(roleIngest) || cfg.has(roleAnalyzer) {
		chOpts, err := chdb.ParseURL(cfg.ClickHouseURL)
		if err != nil {
			return err
		}
		if err := chdb.Migrate(ctx, chOpts, migrations.FS, log.With("component", "migrate")); err != nil {
			return err
		}
		if conn, err = chdb.Open(ctx, chOpts); err != nil {
			return err
		}
		defer func() {
			conn.Close()
			log.Info("clickhouse connection closed")
		}()
	}

	testsKV, err := bus.KV(ctx, eventbus.BucketTests)
	if err != nil {
		return err
	}
	reportsKV, err := bus.KV(ctx, eventbus.BucketReports)
	if err != nil {
		return err
	}
	store := registry.New(testsKV, log.With("component", "registry"))

	// The registry's watch outlives the roles, which read from it while they drain.
	regCtx, stopRegistry := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan error, 1)
	go func() { regDone <- store.Run(regCtx) }()
	defer func() {
		stopRegistry()
		<-regDone
	}()
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = store.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return err
	}

	// Ingest is built first so that the API's /readyz can show its lag.
	var cons *ingest.Consumer
	if cfg.has(roleIngest) {
		cons, err = ingest.New(ingest.Config{
			BatchSize:     cfg.IngestBatchSize,
			FlushInterval: cfg.IngestFlushInterval,
			Workers:       cfg.IngestWorkers,
			MaxAckPending: cfg.IngestMaxAckPending,
			AckWait:       cfg.IngestAckWait,
			InsertTimeout: cfg.IngestInsertTimeout,
		}, bus.JS, conn, log.With("component", "ingest"), reg)
		if err != nil {
			return err
		}
	}
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

	// Every component is built before any starts, so that a configuration
	// error returns with nothing running.
	var srv *api.Server
	var limiter, ipLimiter *ratelimit.Limiter
	if cfg.has(roleAPI) {
		keys, stopKeys, err := startKeyStore(ctx, cfg, bus, log.With("component", "auth"))
		if err != nil {
			return err
		}
		defer stopKeys()
		checks = append(checks, api.Check{Name: "api_keys", Func: func(context.Context) error {
			if !keys.Ready() {
				return errors.New("API keys not loaded yet")
			}
			return nil
		}})
		var hot *cache.Cache
		if cfg.CacheEnabled {
			if hot, err = cache.New(cfg.Cache, bus.NC, log.With("component", "cache")); err != nil {
				return err
			}
			defer hot.Close()
			reg.MustRegister(hot)
		}
		if cfg.RateLimitEnabled {
			if limiter, err = newLimiter(ctx, cfg, bus, reg, log.With("component", "ratelimit")); err != nil {
				return err
			}
			// Clients known only by IP are limited here alone: anonymous
			// traffic never writes to the shared state.
			if ipLimiter, err = ratelimit.New(ratelimit.Config{}, log.With("component", "ratelimit")); err != nil {
				return err
			}
		}
		var validator *validate.Validator
		if cfg.ValidationEnabled {
			if validator, err = validate.New(cfg.Validation); err != nil {
				return err
			}
		} else {
			log.Warn("input validation is off (INPUT_VALIDATION_ENABLED=false)")
		}
		srv, err = api.New(api.Config{
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
			Registry:  store,
			Publisher: bus.JS,
			Requester: bus.NC,
			Reports:   reportsKV,
			Cache:     hot,
			Checks:    checks,
			Logger:    log.With("component", "api"),
			Metrics:   reg,
			Gatherer:  reg,
		})
		if err != nil {
			return err
		}
	}
	var runner *analysis.Runner
	if cfg.has(roleAnalyzer) {
		runner, err = analysis.NewRunner(analysis.Config{Interval: cfg.AnalysisInterval},
			conn, store, reportsKV, bus.NC, log.With("component", "analyzer"), reg)
		if err != nil {
			return err
		}
	}

	g, ctx := errgroup.WithContext(ctx)
	if srv != nil {
		g.Go(func() error { return srv.Run(ctx) })
	}
	if limiter != nil {
		g.Go(func() error { return limiter.Run(ctx) })
		g.Go(func() error { return ipLimiter.Run(ctx) })
	}
	if cons != nil {
		g.Go(func() error { return cons.Run(ctx) })
	}
	if runner != nil {
		g.Go(func() error { return runner.Run(ctx) })
	}
	err = g.Wait()
	log.Info("abacus stopped", "err", err)
	return err
}

// newLimiter builds the API's rate limiter: shared across replicas through
// the JetStream KV bucket AB_RATELIMIT, or local to this process.
func newLimiter(ctx context.Context, cfg *config, bus *eventbus.Bus, reg prometheus.Registerer, log *slog.Logger) (*ratelimit.Limiter, error) {
	var l *ratelimit.Limiter
	var err error
	if cfg.RateLimitShared {
		l, err = ratelimit.NewDistributed(ctx, bus.JS, ratelimit.Config{Replicas: cfg.NATSReplicas}, log)
	} else {
		l, err = ratelimit.New(ratelimit.Config{}, log)
	}
	if err != nil {
		return nil, err
	}
	stat := func(f func(ratelimit.Stats) float64) func() float64 { return func() float64 { return f(l.Stats()) } }
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "abacus_ratelimit_clients", Help: "Clients whose rate-limit state this replica holds."},
			stat(func(s ratelimit.Stats) float64 { return float64(s.Entries) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "abacus_ratelimit_evicted_total", Help: "Clients dropped from memory: idle, or (forced) at the cap."},
			stat(func(s ratelimit.Stats) float64 { return float64(s.Evicted + s.Forced) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "abacus_ratelimit_reservations_total", Help: "Token leases reserved in the shared state (NATS KV)."},
			stat(func(s ratelimit.Stats) float64 { return float64(s.Reservations) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "abacus_ratelimit_local_fallbacks_total", Help: "Decisions made from this replica's state alone because the shared state was unreachable."},
			stat(func(s ratelimit.Stats) float64 { return float64(s.Fallbacks) })),
	)
	return l, nil
}
