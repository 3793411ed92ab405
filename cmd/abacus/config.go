package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/abacus-ab/abacus/api"
	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/cache"
	"github.com/abacus-ab/abacus/internal/ratelimit"
	"github.com/abacus-ab/abacus/internal/validate"
)

// Roles that serve can run.
const (
	roleAPI      = "api"
	roleIngest   = "ingest"
	roleAnalyzer = "analyzer"
)

var allRoles = []string{roleAPI, roleIngest, roleAnalyzer}

// config is everything abacus reads from flags, the environment and .env.
type config struct {
	Environment string
	LogLevel    slog.Level
	Targets     []string

	HTTPAddr        string
	MaxBodyBytes    int64
	PublishTimeout  time.Duration
	ShutdownTimeout time.Duration
	ReportMaxAge    time.Duration

	// APIKey (API_KEY) is an admin key accepted from memory; APIKeyPepper
	// keys the digests. Both are secrets: summary never shows them.
	APIKey               string
	APIKeyPepper         string
	KeyRotationGrace     time.Duration
	AllowInsecureDevBind bool

	NATSURL          string
	NATSCreds        string
	NATSEmbeddedAddr string
	NATSReplicas     int
	StreamMaxAge     time.Duration
	DuplicateWindow  time.Duration
	DataDir          string

	ClickHouseURL string

	IngestBatchSize     int
	IngestFlushInterval time.Duration
	IngestWorkers       int
	IngestMaxAckPending int
	IngestAckWait       time.Duration
	PprofAddr           string
	IngestInsertTimeout time.Duration

	AnalysisInterval time.Duration

	CORSOrigins    []string
	TrustedProxies []*net.IPNet

	// RateLimitEnabled turns rate limiting on; RateLimitShared shares the
	// limits across replicas through NATS.
	RateLimitEnabled bool
	RateLimitShared  bool
	RateLimit        api.RateLimitConfig

	Validation        validate.Config
	ValidationEnabled bool

	CacheEnabled bool
	Cache        cache.Config
}

// envDoc lists every environment variable with its default and meaning. It
// is what serve --help prints, and the configuration table of README.md is
// generated from it (TestREADMEEnvTable fails when they differ; run it with
// -update to rewrite the table).
var envDoc = [][3]string{
	{"ENVIRONMENT", "production", "production (API keys required, JSON logs) or development (NO authentication, text logs; loopback only)"},
	{"API_KEY", "", "an admin API key (permissions *) accepted from memory; generate one with `abacus keys generate`"},
	{"API_KEY_PEPPER", "", "secret (16+ bytes) that makes stored key digests HMAC-SHA256; changing it invalidates every stored key"},
	{"API_KEY_ROTATION_GRACE", "24h", "how long a rotated key keeps working by default"},
	{"ALLOW_INSECURE_DEV_BIND", "false", "let ENVIRONMENT=development listen on a non-loopback address"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"ABACUS_TARGET", "all", "roles serve runs: all, or a comma list of api, ingest, analyzer"},
	{"ABACUS_HTTP_ADDR", "127.0.0.1:8000", "HTTP listen address"},
	{"INPUT_MAX_REQUEST_SIZE_MB", "10", "largest request body in MB (413 above)"},
	{"INPUT_VALIDATION_ENABLED", "true", "validate request input (false only to measure what validation costs; the body size limit stays)"},
	{"INPUT_MAX_STRING_LENGTH", "100000", "longest string, object key or number in a request, in characters (400 above)"},
	{"INPUT_MAX_DEPTH", "32", "deepest nesting of JSON objects and arrays in a request"},
	{"INPUT_MAX_ELEMENTS", "100000", "most JSON values (array items and object members) in one request body or batch event"},
	{"INPUT_CHECK_SQL_INJECTION", "true", "refuse SQL injection (libinjection) in request strings"},
	{"INPUT_CHECK_XSS", "true", "refuse cross-site scripting (libinjection) in request strings"},
	{"INPUT_CHECK_COMMAND_INJECTION", "true", "refuse shell command injection in request strings"},
	{"INPUT_EXEMPT_FIELDS", "variants[*].configuration,variants[*].value", "comma list of JSON path patterns exempt from the three checks above (`[*]` any index, `*` any key part, `**` any depth)"},
	{"CORS_ALLOWED_ORIGINS", "", "comma list of browser origins allowed to call the API (e.g. https://dash.example.com; no wildcard); empty: none, so browsers refuse cross-origin reads"},
	{"TRUSTED_PROXIES", "", "comma list of proxy IPs or CIDRs whose X-Forwarded-For names the client IP (rate limits per IP); empty: the peer address, and the header is ignored"},
	{"RATE_LIMIT_ENABLED", "auto", "rate limiting: true, false, or auto (on, except with ENVIRONMENT=development)"},
	{"RATE_LIMIT_REQUESTS_PER_MINUTE", "60", "management plane (every route but the data plane's): requests per minute per client (API key, or IP without one), times the key's rate_limit_multiplier; 0 leaves the window out (as for hour and day)"},
	{"RATE_LIMIT_REQUESTS_PER_HOUR", "1000", "requests per hour per client, times the multiplier"},
	{"RATE_LIMIT_REQUESTS_PER_DAY", "10000", "requests per day per client, times the multiplier"},
	{"RATE_LIMIT_DATA_PLANE", "120000/6000000/100000000", "data plane (assign, record, batch events, OpenFeature evaluation and flag definitions): requests per API key per minute/hour/day, times the key's rate_limit_multiplier (0: no limit for that window); one server-side key carries many end users' traffic, so the default lets one key keep a replica busy (2,000 a second) and stops a runaway client within a minute"},
	{"RATE_LIMIT_ENDPOINTS", "", "extra limits per route, in addition: `METHOD /path=minute/hour/day` items separated by `;` (0: no limit for that window), e.g. `GET /api/ab-testing/tests/{test_id}/analyze=30/600/0`"},
	{"RATE_LIMIT_AUTH_FAILURES", "10/100/500", "requests with a missing or invalid API key allowed per client IP per minute/hour/day"},
	{"RATE_LIMIT_SHARED", "auto", "share the limits across replicas through NATS (true, false, or auto: when NATS_URL or NATS_EMBEDDED_LISTEN is set)"},
	{"PUBLISH_TIMEOUT", "5s", "longest wait for JetStream to acknowledge an event (503 after)"},
	{"SHUTDOWN_TIMEOUT", "30s", "longest drain of in-flight HTTP requests on SIGTERM (ingest finishes its last batch within INGEST_INSERT_TIMEOUT)"},
	{"ANALYSIS_REPORT_MAX_AGE", "10s", "GET .../analyze serves a stored report younger than this"},
	{"NATS_URL", "", "external NATS server or cluster; empty starts an embedded server"},
	{"NATS_CREDS", "", "NATS credentials file for NATS_URL"},
	{"NATS_EMBEDDED_LISTEN", "", "host:port where the embedded server accepts other clients (other replicas, the nats CLI); empty: in-process only"},
	{"NATS_REPLICAS", "1", "replicas of the stream and KV buckets (3 in a cluster)"},
	{"NATS_STREAM_MAX_AGE", "72h", "how long events stay in the stream"},
	{"NATS_DUPLICATE_WINDOW", "2m", "JetStream remembers message ids (an event's, or a batch message's) this long: a client retry within it is stored once (about 100 bytes of memory per message in the window)"},
	{"DATA_DIR", "./data", "embedded NATS JetStream store (DATA_DIR/nats) and the local ClickHouse's data (DATA_DIR/clickhouse)"},
	{"CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/abacus", "ClickHouse native-protocol URL (database created if missing); clickhouse-go query parameters (dial_timeout, max_open_conns, ...) apply"},
	{"INGEST_BATCH_SIZE", "5000", "most messages, and about as many events, per ClickHouse insert"},
	{"INGEST_FLUSH_INTERVAL", "200ms", "longest an event waits for its batch to fill"},
	{"INGEST_WORKERS", "2", "concurrent ingest loops in this process"},
	{"INGEST_MAX_ACK_PENDING", "4 x batch x workers", "messages (one event, or a batch of up to 1000) delivered but not yet acknowledged, across all ingest processes"},
	{"CACHE_ENABLED", "true", "in-process caches (bigcache) of hot reads; false turns every layer off"},
	{"CACHE_TESTS_SIZE", "10000", "entries of the tests layer (GET .../tests/{id})"},
	{"CACHE_TESTS_TTL", "5m", "longest life of a tests entry (entries are keyed by the test's version, so changes never wait for it)"},
	{"CACHE_TESTS_MAX_MB", "16", "memory of the tests layer"},
	{"CACHE_ANALYSIS_SIZE", "2000", "entries of the analysis layer (reports for hot analyze reads)"},
	{"CACHE_ANALYSIS_TTL", "ANALYSIS_INTERVAL", "longest life of a cached report (a report is also never served older than max_age)"},
	{"CACHE_ANALYSIS_MAX_MB", "64", "memory of the analysis layer; 0 turns it off"},
	{"CACHE_QUERY_SIZE", "5000", "entries of the query layer (test lists, analysis history)"},
	{"CACHE_QUERY_TTL", "30m", "longest life of a query entry"},
	{"CACHE_QUERY_MAX_MB", "32", "memory of the query layer"},
	{"CACHE_GENERAL_SIZE", "1000", "entries of the general layer (power calculations)"},
	{"CACHE_DEFAULT_TTL", "3600s", "longest life of a general entry"},
	{"CACHE_GENERAL_MAX_MB", "16", "memory of the general layer"},
	{"ABACUS_PPROF_ADDR", "", "host:port for Go's net/http/pprof profiles on a listener of their own (debugging; keep it on loopback); empty: off"},
	{"INGEST_ACK_WAIT", "60s", "how long JetStream waits for ingest's ack before redelivering (at least INGEST_INSERT_TIMEOUT + INGEST_FLUSH_INTERVAL + 1s)"},
	{"INGEST_INSERT_TIMEOUT", "20s", "longest work on one fetched batch: lookups, the intent record and the ClickHouse insert (1s to 1m: the analyzer's fold allows two minutes for inserts in flight)"},
	{"ANALYSIS_INTERVAL", "60s", "how often the analyzer recomputes running tests"},
}

// loadConfig reads .env (without overriding the environment), then the
// environment, then flags. It reports every bad setting at once.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	dotenv, err := readDotEnv(getenv)
	if err != nil {
		return nil, err
	}
	r := &envReader{getenv: getenv, dotenv: dotenv}
	c := &config{}
	c.readServer(r)
	c.readBus(r)
	c.readIngest(r)
	c.readCORS(r)
	c.readValidation(r)
	c.readCache(r)
	c.readRateLimits(r)
	c.readTrustedProxies(r)

	target, err := parseServeFlags(c, args, r.get("ABACUS_TARGET"), stderr)
	if err != nil {
		return nil, err
	}
	if c.Targets, err = parseTargets(target); err != nil {
		r.fail(err)
	}
	if err := errors.Join(r.errs...); err != nil {
		return nil, err
	}
	return c, c.validate()
}

// readDotEnv reads ABACUS_ENV_FILE, or ./.env when it exists.
func readDotEnv(getenv func(string) string) (map[string]string, error) {
	path := getenv("ABACUS_ENV_FILE")
	if path == "" {
		if !fileExists(".env") {
			return map[string]string{}, nil
		}
		path = ".env"
	}
	m, err := godotenv.Read(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return m, nil
}

// envReader reads settings from the environment, then .env, then envDoc's
// defaults, and collects the errors of the ones that do not parse.
type envReader struct {
	getenv func(string) string
	dotenv map[string]string
	errs   []error
}

// set returns the value of key set in the environment or .env, or "".
func (r *envReader) set(key string) string {
	if v := r.getenv(key); v != "" {
		return v
	}
	return r.dotenv[key]
}

// get returns the value of key, or its default from envDoc.
func (r *envReader) get(key string) string {
	if v := r.set(key); v != "" {
		return v
	}
	for _, d := range envDoc {
		if d[0] == key {
			return d[1]
		}
	}
	return ""
}

func (r *envReader) fail(err error) { r.errs = append(r.errs, err) }

func (r *envReader) dur(key string) time.Duration {
	d, err := time.ParseDuration(r.get(key))
	if err != nil || d < 0 {
		r.fail(fmt.Errorf("%s=%q: want a duration such as 500ms, 30s or 5m", key, r.get(key)))
	}
	return d
}

func (r *envReader) boolean(key string) bool {
	b, err := strconv.ParseBool(r.get(key))
	if err != nil {
		r.fail(fmt.Errorf("%s=%q: want true or false", key, r.get(key)))
	}
	return b
}

func (r *envReader) num(key string) int {
	n, err := strconv.Atoi(r.get(key))
	if err != nil {
		r.fail(fmt.Errorf("%s=%q: want a whole number", key, r.get(key)))
	}
	return n
}

// readServer reads the environment, logging, HTTP and API key settings.
func (c *config) readServer(r *envReader) {
	c.Environment = strings.ToLower(r.get("ENVIRONMENT"))
	if err := c.LogLevel.UnmarshalText([]byte(r.get("LOG_LEVEL"))); err != nil {
		r.fail(fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", r.get("LOG_LEVEL")))
	}
	c.HTTPAddr = r.get("ABACUS_HTTP_ADDR")
	mb, err := strconv.ParseFloat(r.get("INPUT_MAX_REQUEST_SIZE_MB"), 64)
	if err != nil || mb <= 0 || mb > 1024 {
		r.fail(fmt.Errorf("INPUT_MAX_REQUEST_SIZE_MB=%q: want a number of MB in (0, 1024]", r.get("INPUT_MAX_REQUEST_SIZE_MB")))
	}
	c.MaxBodyBytes = int64(mb * (1 << 20))
	c.PublishTimeout = r.dur("PUBLISH_TIMEOUT")
	c.ShutdownTimeout = r.dur("SHUTDOWN_TIMEOUT")
	c.ReportMaxAge = r.dur("ANALYSIS_REPORT_MAX_AGE")
	c.APIKey = r.get("API_KEY")
	c.APIKeyPepper = r.get("API_KEY_PEPPER")
	c.KeyRotationGrace = r.dur("API_KEY_ROTATION_GRACE")
	c.AllowInsecureDevBind = r.boolean("ALLOW_INSECURE_DEV_BIND")
}

// readBus reads the NATS, data folder and ClickHouse settings.
func (c *config) readBus(r *envReader) {
	c.NATSURL = r.get("NATS_URL")
	c.NATSCreds = r.get("NATS_CREDS")
	c.NATSEmbeddedAddr = r.get("NATS_EMBEDDED_LISTEN")
	c.NATSReplicas = r.num("NATS_REPLICAS")
	c.StreamMaxAge = r.dur("NATS_STREAM_MAX_AGE")
	c.DuplicateWindow = r.dur("NATS_DUPLICATE_WINDOW")
	c.DataDir = r.get("DATA_DIR")
	c.ClickHouseURL = r.get("CLICKHOUSE_URL")
}

// readIngest reads the ingest, pprof and analyzer settings.
func (c *config) readIngest(r *envReader) {
	c.IngestBatchSize = r.num("INGEST_BATCH_SIZE")
	c.IngestFlushInterval = r.dur("INGEST_FLUSH_INTERVAL")
	c.IngestWorkers = r.num("INGEST_WORKERS")
	// Unset, it is 0: ingest computes it from the batch size and workers.
	if r.set("INGEST_MAX_ACK_PENDING") != "" {
		c.IngestMaxAckPending = r.num("INGEST_MAX_ACK_PENDING")
	}
	c.IngestAckWait = r.dur("INGEST_ACK_WAIT")
	c.PprofAddr = r.get("ABACUS_PPROF_ADDR")
	c.IngestInsertTimeout = r.dur("INGEST_INSERT_TIMEOUT")
	c.AnalysisInterval = r.dur("ANALYSIS_INTERVAL")
}

func (c *config) readCORS(r *envReader) {
	c.CORSOrigins = list(r.get("CORS_ALLOWED_ORIGINS"))
	for _, o := range c.CORSOrigins {
		if o == "*" || !(strings.HasPrefix(o, "https://") || strings.HasPrefix(o, "http://")) {
			r.fail(fmt.Errorf("CORS_ALLOWED_ORIGINS: %q: want origins such as https://dash.example.com (no wildcard)", o))
		}
	}
}

func (c *config) readValidation(r *envReader) {
	c.ValidationEnabled = r.boolean("INPUT_VALIDATION_ENABLED")
	c.Validation = validate.Config{
		MaxStringLength:        r.num("INPUT_MAX_STRING_LENGTH"),
		MaxDepth:               r.num("INPUT_MAX_DEPTH"),
		MaxElements:            r.num("INPUT_MAX_ELEMENTS"),
		EnableSQLInjection:     r.boolean("INPUT_CHECK_SQL_INJECTION"),
		EnableXSS:              r.boolean("INPUT_CHECK_XSS"),
		EnableCommandInjection: r.boolean("INPUT_CHECK_COMMAND_INJECTION"),
		ExemptFields:           append([]string{}, list(r.get("INPUT_EXEMPT_FIELDS"))...),
	}
	if c.Validation.MaxStringLength < 1 || c.Validation.MaxDepth < 1 || c.Validation.MaxElements < 1 {
		r.fail(errors.New("INPUT_MAX_STRING_LENGTH, INPUT_MAX_DEPTH and INPUT_MAX_ELEMENTS must be at least 1"))
	}
	if err := c.Validation.Validate(); err != nil {
		r.fail(fmt.Errorf("INPUT_EXEMPT_FIELDS: %w", err))
	}
}

func (c *config) readCache(r *envReader) {
	c.CacheEnabled = r.boolean("CACHE_ENABLED")
	layer := func(prefix, ttlKey string) cache.LayerConfig {
		lc := cache.LayerConfig{MaxEntries: r.num(prefix + "_SIZE"), MaxMB: r.num(prefix + "_MAX_MB")}
		if ttlKey == "CACHE_ANALYSIS_TTL" && r.set(ttlKey) == "" {
			lc.TTL = max(r.dur("ANALYSIS_INTERVAL"), time.Second)
		} else {
			lc.TTL = r.dur(ttlKey)
		}
		lc.Disabled = !c.CacheEnabled || lc.MaxMB == 0
		if lc.Disabled {
			lc.MaxMB = 1
		}
		return lc
	}
	c.Cache = cache.Config{
		Tests:    layer("CACHE_TESTS", "CACHE_TESTS_TTL"),
		Analysis: layer("CACHE_ANALYSIS", "CACHE_ANALYSIS_TTL"),
		Query:    layer("CACHE_QUERY", "CACHE_QUERY_TTL"),
		General:  layer("CACHE_GENERAL", "CACHE_DEFAULT_TTL"),
		Subject:  cache.SubjectInvalidate,
	}
	if err := c.Cache.Validate(); err != nil {
		r.fail(fmt.Errorf("CACHE_*: %w", err))
	}
}

func (c *config) readRateLimits(r *envReader) {
	c.RateLimitEnabled = boolAuto("RATE_LIMIT_ENABLED", r.get("RATE_LIMIT_ENABLED"), c.Environment != "development", &r.errs)
	c.RateLimitShared = boolAuto("RATE_LIMIT_SHARED", r.get("RATE_LIMIT_SHARED"), r.get("NATS_URL") != "" || r.get("NATS_EMBEDDED_LISTEN") != "", &r.errs)
	c.RateLimit.Global = ratelimit.Standard("global", r.num("RATE_LIMIT_REQUESTS_PER_MINUTE"), r.num("RATE_LIMIT_REQUESTS_PER_HOUR"), r.num("RATE_LIMIT_REQUESTS_PER_DAY"))
	if len(c.RateLimit.Global.Windows) == 0 && c.RateLimitEnabled {
		r.fail(errors.New("RATE_LIMIT_REQUESTS_PER_MINUTE/HOUR/DAY are all 0: set RATE_LIMIT_ENABLED=false to turn rate limiting off"))
	}
	if m, h, d, err := triple(r.get("RATE_LIMIT_DATA_PLANE")); err != nil {
		r.fail(fmt.Errorf("RATE_LIMIT_DATA_PLANE: %w", err))
	} else {
		c.RateLimit.DataPlane = ratelimit.Standard("data_plane", m, h, d)
	}
	if m, h, d, err := triple(r.get("RATE_LIMIT_AUTH_FAILURES")); err != nil {
		r.fail(fmt.Errorf("RATE_LIMIT_AUTH_FAILURES: %w", err))
	} else {
		c.RateLimit.AuthFailures = ratelimit.Standard("auth_failure", m, h, d)
	}
	for _, item := range strings.Split(r.get("RATE_LIMIT_ENDPOINTS"), ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		route, limits, ok := strings.Cut(item, "=")
		m, h, d, err := triple(limits)
		if !ok || err != nil {
			r.fail(fmt.Errorf("RATE_LIMIT_ENDPOINTS: %q: want METHOD /path=minute/hour/day", strings.TrimSpace(item)))
			continue
		}
		if c.RateLimit.Endpoints == nil {
			c.RateLimit.Endpoints = map[string]ratelimit.Policy{}
		}
		c.RateLimit.Endpoints[strings.TrimSpace(route)] = ratelimit.Standard("", m, h, d)
	}
}

func (c *config) readTrustedProxies(r *envReader) {
	for _, p := range list(r.get("TRUSTED_PROXIES")) {
		n, err := parseNet(p)
		if err != nil {
			r.fail(fmt.Errorf("TRUSTED_PROXIES: %w", err))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
}

// parseServeFlags parses serve's flags over c and returns --target, whose
// default is target (ABACUS_TARGET). --help prints envDoc.
func parseServeFlags(c *config, args []string, target string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("abacus serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&target, "target", target, "roles to run: all, or a comma list of api, ingest, analyzer (env ABACUS_TARGET)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address (env ABACUS_HTTP_ADDR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: abacus serve [--target=api,ingest,analyzer] [--http-addr=host:port]")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nenvironment (also read from .env):")
		for _, d := range envDoc {
			fmt.Fprintf(stderr, "  %-26s %s (default %q)\n", d[0], d[2], d[1])
		}
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return target, nil
}

// boolAuto parses true, false or auto (which gives auto).
func boolAuto(key, v string, auto bool, errs *[]error) bool {
	if strings.EqualFold(v, "auto") {
		return auto
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s=%q: want true, false or auto", key, v))
	}
	return b
}

// triple parses "minute/hour/day" limits, each a whole number >= 0.
func triple(s string) (m, h, d int, err error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("%q: want minute/hour/day limits such as 10/100/500", s)
	}
	var out [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			return 0, 0, 0, fmt.Errorf("%q: want minute/hour/day limits such as 10/100/500", s)
		}
		out[i] = n
	}
	if out == [3]int{} {
		return 0, 0, 0, fmt.Errorf("%q: at least one limit must be above 0", s)
	}
	return out[0], out[1], out[2], nil
}

// list splits a comma list, dropping blanks.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseNet parses a CIDR, or one IP as a single-address network.
func parseNet(s string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q: want an IP or a CIDR such as 10.0.0.0/8", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

func parseTargets(s string) ([]string, error) {
	if s == "" || s == "all" {
		return allRoles, nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(allRoles, r) {
			return nil, fmt.Errorf("target %q: want all, or a comma list of api, ingest, analyzer", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (c *config) validate() error {
	switch {
	case c.Environment != "development" && c.Environment != "production":
		return fmt.Errorf("ENVIRONMENT=%q: want development or production", c.Environment)
	case c.NATSReplicas < 1 || c.NATSReplicas > 5:
		return fmt.Errorf("NATS_REPLICAS=%d: want 1 to 5", c.NATSReplicas)
	case c.NATSURL == "" && c.DataDir == "":
		return errors.New("DATA_DIR is empty: the embedded NATS server needs a folder")
	case c.NATSURL != "" && c.NATSEmbeddedAddr != "":
		return errors.New("NATS_EMBEDDED_LISTEN is set together with NATS_URL: choose embedded or external NATS")
	case c.ClickHouseURL == "":
		return errors.New("CLICKHOUSE_URL is empty")
	case c.APIKey != "" && auth.ParseKey(c.APIKey) != nil:
		return errors.New("API_KEY is not an Abacus key (rac_ followed by 49 letters and digits): generate one with `abacus keys generate`")
	case c.APIKeyPepper != "" && len(c.APIKeyPepper) < 16:
		return fmt.Errorf("API_KEY_PEPPER is %d bytes: want at least 16 random bytes", len(c.APIKeyPepper))
	case c.Environment == "development" && !loopbackAddr(c.HTTPAddr) && !c.AllowInsecureDevBind:
		return fmt.Errorf("ENVIRONMENT=development disables authentication, so it listens only on loopback; ABACUS_HTTP_ADDR=%q is not: "+
			"use 127.0.0.1, or set ALLOW_INSECURE_DEV_BIND=true if you really mean to expose an unauthenticated server", c.HTTPAddr)
	}
	return nil
}

// loopbackAddr reports whether a host:port listens on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *config) has(role string) bool { return slices.Contains(c.Targets, role) }

// summary is the configuration to log at start, with secrets redacted.
func (c *config) summary() []any {
	nats := "embedded"
	if c.NATSURL != "" {
		nats = redactURL(c.NATSURL)
	}
	return []any{
		"environment", c.Environment, "targets", strings.Join(c.Targets, ","),
		"http_addr", c.HTTPAddr, "nats", nats, "clickhouse", redactURL(c.ClickHouseURL),
		"data_dir", c.DataDir,
		"auth", c.authSummary(),
	}
}

func (c *config) authSummary() string {
	if c.Environment == "development" {
		return "DISABLED (development)"
	}
	s := "api keys"
	if c.APIKeyPepper != "" {
		s += ", hmac-sha256 digests"
	} else {
		s += ", sha256 digests"
	}
	if c.APIKey != "" {
		s += ", API_KEY set"
	}
	return s
}

// redactURL hides the passwords in a URL, or in each server of a comma list
// of URLs (NATS_URL may name several), with (*url.URL).Redacted. A server
// may leave out the scheme ("h:4222"), as NATS allows. A part that does not
// parse is shown as "<unparsable>", so that a typo never leaks a password
// into the logs.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactServer(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactServer(s string) string {
	if s == "" {
		return s
	}
	noScheme := !strings.Contains(s, "://")
	if noScheme {
		s = "//" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "<unparsable>"
	}
	if noScheme {
		return strings.TrimPrefix(u.Redacted(), "//")
	}
	return u.Redacted()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
