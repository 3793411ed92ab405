package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/validate"
)

// Config configures the HTTP server.
type Config struct {
	// Addr is the host:port to listen on.
	Addr string
	// MaxBodyBytes limits request bodies (413 above it).
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for JetStream to acknowledge an event.
	PublishTimeout time.Duration
	// ConsistentWait bounds how long analyze?consistent=true waits for
	// ingest to store the events acknowledged before it (default 30 s).
	ConsistentWait time.Duration
	// AnalyzeTimeout bounds the wait for the analyzer to compute a report.
	AnalyzeTimeout time.Duration
	// ReportMaxAge is how old a stored report may be before GET .../analyze
	// asks the analyzer for a fresh one (overridable per request with max_age).
	ReportMaxAge time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests.
	ShutdownTimeout time.Duration
	// AuthDisabled serves every route without an API key (ENVIRONMENT=
	// development); every response then carries an X-Abacus-Warning header.
	AuthDisabled bool
	// CORSOrigins are the origins allowed to call the API from a browser
	// (none by default: no CORS headers are sent).
	CORSOrigins []string
	// RateLimit sets the limits Deps.Limiter enforces.
	RateLimit RateLimitConfig
	// TrustedProxies are the networks whose X-Forwarded-For header names the
	// client IP; with none, the client IP is the peer address.
	TrustedProxies []*net.IPNet
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8000"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.ConsistentWait == 0 {
		c.ConsistentWait = 30 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.AnalyzeTimeout == 0 {
		c.AnalyzeTimeout = 30 * time.Second
	}
	if c.ReportMaxAge == 0 {
		c.ReportMaxAge = 10 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("HTTP address %q: %w", c.Addr, err)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("max body size %d: want at least 1024 bytes", c.MaxBodyBytes)
	}
	return nil
}

// registry is the store of test definitions (met by *registry.Store).
type testRegistry interface {
	Get(ctx context.Context, id string) (*experiment.Test, error)
	// ByKey returns the test with a key (experiment.Test.Key).
	ByKey(ctx context.Context, key string) (*experiment.Test, error)
	List() []*experiment.Test
	Create(ctx context.Context, t *experiment.Test) error
	Update(ctx context.Context, id string, fn func(*experiment.Test) error) (*experiment.Test, error)
	// Generation changes whenever the registry applies a change.
	Generation() uint64
}

// publisher publishes events to JetStream (met by jetstream.JetStream).
type publisher interface {
	Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// requester sends a request and waits for one reply (met by *nats.Conn).
type requester interface {
	RequestMsgWithContext(ctx context.Context, msg *nats.Msg) (*nats.Msg, error)
}

// reportReader reads stored reports (met by jetstream.KeyValue).
type reportReader interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// Check is a named readiness check. Func decides readiness; Details, when
// set, adds information to /readyz without affecting it (ingest lag).
type Check struct {
	Name    string
	Func    func(ctx context.Context) error
	Details func() any
}

// Deps are the server's collaborators.
type Deps struct {
	Registry  testRegistry
	Publisher publisher
	Requester requester
	Reports   reportReader
	Checks    []Check
	Logger    *slog.Logger
	// Metrics registers the server's collectors; Gatherer serves /metrics.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Keys verifies and manages API keys (an *auth.Store); required unless
	// Config.AuthDisabled.
	Keys keyStore
	// Cache holds hot reads in process, in the layers of internal/cache
	// (see cache.go), analysis reports included; nil disables caching.
	Cache *cache.Cache
	// Validator checks every request's input; nil
	// leaves only the body size limit.
	Validator *validate.Validator
	// Limiter enforces Config.RateLimit; nil
	// disables rate limiting.
	Limiter *ratelimit.Limiter
	// IPLimiter limits clients known only by IP (failed authentication,
	// development mode); it should be local to the replica (a
	// limiter from ratelimit.New). Nil means Limiter.
	IPLimiter *ratelimit.Limiter
}

// Server is the Abacus HTTP API.
type Server struct {
	cfg      Config
	e        *echo.Echo
	reg      testRegistry
	pub      publisher
	cache    *cache.Cache    // nil: no caching
	async    asyncPublisher  // batches; nil when the publisher cannot publish asynchronously
	commit   *committer      // group commit of single events; nil without async
	inspect  streamInspector // the event stream's state, for consistent reads; nil when unknown
	req      requester
	reports  reportReader
	checks   []Check
	log      *slog.Logger
	metrics  *metrics
	stopping atomic.Bool
	now      func() time.Time

	keys         keyStore
	perms        map[routeKey]auth.Permission  // the route table's permissions
	dataPlane    map[routeKey]bool             // the data plane's routes (dataPlane)
	flagsBody    atomic.Pointer[renderedFlags] // listFlags' last answer
	routeErrs    []error
	authFailures *prometheus.CounterVec
	limits       *limits // nil: no rate limiting

	validator       inputValidator // nil: no input validation
	inputRejections *prometheus.CounterVec
}

// New builds the server and its route table.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Metrics == nil || d.Gatherer == nil {
		r := prometheus.NewRegistry()
		d.Metrics, d.Gatherer = r, r
	}
	s := &Server{
		cfg:     cfg,
		reg:     d.Registry,
		pub:     d.Publisher,
		req:     d.Requester,
		reports: d.Reports,
		checks:  d.Checks,
		log:     d.Logger,
		metrics: newMetrics(d.Metrics, d.Gatherer),
		now:     time.Now,

		keys:         d.Keys,
		perms:        make(map[routeKey]auth.Permission),
		dataPlane:    make(map[routeKey]bool),
		authFailures: newAuthFailures(d.Metrics),

		inputRejections: newInputRejections(d.Metrics),
	}
	if d.Keys == nil && !cfg.AuthDisabled {
		return nil, errors.New("no API key store: set Deps.Keys, or Config.AuthDisabled for development")
	}
	s.cache = d.Cache
	if si, ok := d.Publisher.(streamInspector); ok {
		s.inspect = si
	}
	if ap, ok := d.Publisher.(asyncPublisher); ok {
		s.async = ap
		s.commit = newCommitter(ap, cfg.PublishTimeout, s.countPublished)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	s.e = e
	s.routes()
	if err := s.checkRoutes(); err != nil {
		return nil, err
	}
	// Deps hold concrete pointers, so a nil one cannot turn into a
	// non-nil interface holding nil here.
	if d.Validator != nil {
		s.validator = d.Validator
	}
	if d.Limiter != nil {
		ipl := d.IPLimiter
		if ipl == nil {
			ipl = d.Limiter
		}
		lim, err := s.newLimits(d.Limiter, ipl, cfg.RateLimit, d.Metrics)
		if err != nil {
			return nil, err
		}
		s.limits = lim
	}
	return s, nil
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists the registered routes.
func (s *Server) Routes() []*echo.Route { return s.e.Routes() }

// Run listens on cfg.Addr and serves until ctx is done, then fails readiness,
// stops accepting, and drains in-flight requests within ShutdownTimeout. It
// returns after the HTTP server has stopped.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.log.Info("http server shutting down: readiness failed, draining requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	s.log.Info("http server stopped")
	return nil
}
