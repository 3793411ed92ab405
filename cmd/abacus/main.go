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
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/abacus-ab/abacus/analysis"
	"github.com/abacus-ab/abacus/ingest"
	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/registry"
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

// serve wires the roles in cfg.Targets and runs them until ctx is done,
// then stops them one at a time (see runRoles).
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

	bus, err := connectBus(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		bus.Close()
		log.Info("nats connection closed")
	}()

	// Only ingest and the analyzer use ClickHouse: an API-only replica
	// neither opens it nor reports it in /readyz, so a ClickHouse outage
	// does not take the API out of rotation.
	var conn driver.Conn
	if cfg.has(roleIngest) || cfg.has(roleAnalyzer) {
		if conn, err = openClickHouse(ctx, cfg, log); err != nil {
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
	store, stopRegistry, err := startRegistry(ctx, testsKV, log.With("component", "registry"))
	if err != nil {
		return err
	}
	defer stopRegistry()

	// Every component is built before any starts, so that a configuration
	// error returns with nothing running. Ingest is built first so that
	// the API's /readyz can show its lag.
	var cons *ingest.Consumer
	if cfg.has(roleIngest) {
		if cons, err = newIngest(cfg, bus, conn, log.With("component", "ingest"), reg); err != nil {
			return err
		}
	}
	var roles []role
	if cfg.has(roleAPI) {
		apiRole, closeAPI, err := newAPIRole(ctx, cfg, apiDeps{
			bus: bus, store: store, reports: reportsKV, checks: readyChecks(bus, store, conn, cons), reg: reg,
		}, log)
		if err != nil {
			return err
		}
		defer closeAPI()
		roles = append(roles, apiRole)
	}
	if cons != nil {
		roles = append(roles, role{name: roleIngest, run: cons.Run})
	}
	if cfg.has(roleAnalyzer) {
		runner, err := analysis.NewRunner(analysis.Config{Interval: cfg.AnalysisInterval},
			conn, store, reportsKV, bus.NC, log.With("component", "analyzer"), reg)
		if err != nil {
			return err
		}
		roles = append(roles, role{name: roleAnalyzer, run: runner.Run})
	}

	err = runRoles(ctx, log, roles)
	log.Info("abacus stopped", "err", err)
	return err
}

// connectBus connects to NATS (or starts the embedded server) and
// provisions the stream and buckets.
func connectBus(ctx context.Context, cfg *config, log *slog.Logger) (*eventbus.Bus, error) {
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
		return nil, err
	}
	if err := bus.Provision(ctx); err != nil {
		bus.Close()
		log.Info("nats connection closed")
		return nil, err
	}
	return bus, nil
}

// openClickHouse applies the migrations and opens the connection that
// ingest and the analyzer share.
func openClickHouse(ctx context.Context, cfg *config, log *slog.Logger) (driver.Conn, error) {
	opts, err := chdb.ParseURL(cfg.ClickHouseURL)
	if err != nil {
		return nil, err
	}
	if err := chdb.Migrate(ctx, opts, migrations.FS, log.With("component", "migrate")); err != nil {
		return nil, err
	}
	return chdb.Open(ctx, opts)
}

// startRegistry starts the watch of the test definitions and waits until
// they are loaded. stop ends the watch and waits for it.
func startRegistry(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*registry.Store, func(), error) {
	store := registry.New(kv, log)
	// The registry's watch outlives the roles, which read from it while they drain.
	regCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- store.Run(regCtx) }()
	stop := func() {
		cancel()
		<-done
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, 30*time.Second)
	defer cancelReady()
	if err := store.WaitReady(readyCtx); err != nil {
		stop()
		return nil, nil, err
	}
	return store, stop, nil
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
