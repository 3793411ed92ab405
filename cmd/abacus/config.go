package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/abacus-ab/abacus/internal/auth"
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
	AnalysisCacheMB     int
	IngestInsertTimeout time.Duration

	AnalysisInterval time.Duration

	CORSOrigins    []string
	TrustedProxies []*net.IPNet
}

// envDoc lists every environment variable with its default, for --help and
// the README.
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
	{"CORS_ALLOWED_ORIGINS", "", "comma list of browser origins allowed to call the API (e.g. https://dash.example.com); empty: none"},
	{"TRUSTED_PROXIES", "", "comma list of proxy IPs or CIDRs whose X-Forwarded-For names the client IP (rate limits per IP); empty: the peer address"},
	{"PUBLISH_TIMEOUT", "5s", "longest wait for JetStream to acknowledge an event (503 after)"},
	{"SHUTDOWN_TIMEOUT", "30s", "longest drain of each component on SIGTERM"},
	{"ANALYSIS_REPORT_MAX_AGE", "10s", "GET .../analyze serves a stored report younger than this"},
	{"NATS_URL", "", "external NATS server or cluster; empty starts an embedded server"},
	{"NATS_CREDS", "", "NATS credentials file for NATS_URL"},
	{"NATS_EMBEDDED_LISTEN", "", "host:port where the embedded server accepts other clients; empty: in-process only"},
	{"NATS_REPLICAS", "1", "replicas of the stream and KV buckets (3 in a cluster)"},
	{"NATS_STREAM_MAX_AGE", "72h", "how long events stay in the stream"},
	{"NATS_DUPLICATE_WINDOW", "2m", "JetStream remembers event ids this long: a client retry within it is stored once"},
	{"DATA_DIR", "./data", "embedded NATS JetStream store (DATA_DIR/nats) and local ClickHouse data"},
	{"CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/abacus", "ClickHouse native-protocol URL (database created if missing)"},
	{"INGEST_BATCH_SIZE", "5000", "most events per ClickHouse insert"},
	{"INGEST_FLUSH_INTERVAL", "200ms", "longest an event waits for its batch to fill"},
	{"INGEST_WORKERS", "2", "concurrent ingest loops in this process"},
	{"INGEST_MAX_ACK_PENDING", "4 x batch x workers", "events delivered but not yet acknowledged, across all ingest processes"},
	{"CACHE_ANALYSIS_MAX_MB", "64", "in-process (bigcache) cache of analysis reports for hot analyze reads, in MB; 0 disables it"},
	{"ABACUS_PPROF_ADDR", "", "host:port for Go's net/http/pprof profiles (debugging; keep it on loopback); empty: off"},
	{"INGEST_ACK_WAIT", "60s", "how long JetStream waits for ingest's ack before redelivering (must exceed INGEST_INSERT_TIMEOUT)"},
	{"INGEST_INSERT_TIMEOUT", "20s", "longest ClickHouse insert of one batch"},
	{"ANALYSIS_INTERVAL", "60s", "how often the analyzer recomputes running tests"},
}

// loadConfig reads .env (without overriding the environment), then the
// environment, then flags.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	dotenv := map[string]string{}
	if path := getenv("ABACUS_ENV_FILE"); path != "" || fileExists(".env") {
		if path == "" {
			path = ".env"
		}
		m, err := godotenv.Read(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		dotenv = m
	}
	env := func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return dotenv[key]
	}
	get := func(key string) string {
		if v := env(key); v != "" {
			return v
		}
		for _, d := range envDoc {
			if d[0] == key {
				return d[1]
			}
		}
		return ""
	}

	c := &config{}
	var errs []error
	dur := func(key string) time.Duration {
		d, err := time.ParseDuration(get(key))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 500ms, 30s or 5m", key, get(key)))
		}
		return d
	}
	num := func(key string) int {
		if key == "INGEST_MAX_ACK_PENDING" && env(key) == "" {
			return 0
		}
		n, err := strconv.Atoi(get(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number", key, get(key)))
		}
		return n
	}

	c.Environment = strings.ToLower(get("ENVIRONMENT"))
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", get("LOG_LEVEL")))
	}
	c.HTTPAddr = get("ABACUS_HTTP_ADDR")
	mb, err := strconv.ParseFloat(get("INPUT_MAX_REQUEST_SIZE_MB"), 64)
	if err != nil || mb <= 0 || mb > 1024 {
		errs = append(errs, fmt.Errorf("INPUT_MAX_REQUEST_SIZE_MB=%q: want a number of MB in (0, 1024]", get("INPUT_MAX_REQUEST_SIZE_MB")))
	}
	c.MaxBodyBytes = int64(mb * (1 << 20))
	c.PublishTimeout = dur("PUBLISH_TIMEOUT")
	c.ShutdownTimeout = dur("SHUTDOWN_TIMEOUT")
	c.ReportMaxAge = dur("ANALYSIS_REPORT_MAX_AGE")
	c.APIKey = get("API_KEY")
	c.APIKeyPepper = get("API_KEY_PEPPER")
	c.KeyRotationGrace = dur("API_KEY_ROTATION_GRACE")
	c.AllowInsecureDevBind, err = strconv.ParseBool(get("ALLOW_INSECURE_DEV_BIND"))
	if err != nil {
		errs = append(errs, fmt.Errorf("ALLOW_INSECURE_DEV_BIND=%q: want true or false", get("ALLOW_INSECURE_DEV_BIND")))
	}
	c.NATSURL = get("NATS_URL")
	c.NATSCreds = get("NATS_CREDS")
	c.NATSEmbeddedAddr = get("NATS_EMBEDDED_LISTEN")
	c.NATSReplicas = num("NATS_REPLICAS")
	c.StreamMaxAge = dur("NATS_STREAM_MAX_AGE")
	c.DuplicateWindow = dur("NATS_DUPLICATE_WINDOW")
	c.DataDir = get("DATA_DIR")
	c.ClickHouseURL = get("CLICKHOUSE_URL")
	c.IngestBatchSize = num("INGEST_BATCH_SIZE")
	c.IngestFlushInterval = dur("INGEST_FLUSH_INTERVAL")
	c.IngestWorkers = num("INGEST_WORKERS")
	c.IngestMaxAckPending = num("INGEST_MAX_ACK_PENDING")
	c.IngestAckWait = dur("INGEST_ACK_WAIT")
	c.PprofAddr = get("ABACUS_PPROF_ADDR")
	c.AnalysisCacheMB = num("CACHE_ANALYSIS_MAX_MB")
	c.IngestInsertTimeout = dur("INGEST_INSERT_TIMEOUT")
	c.AnalysisInterval = dur("ANALYSIS_INTERVAL")
	c.CORSOrigins = list(get("CORS_ALLOWED_ORIGINS"))
	for _, o := range c.CORSOrigins {
		if o == "*" || !(strings.HasPrefix(o, "https://") || strings.HasPrefix(o, "http://")) {
			errs = append(errs, fmt.Errorf("CORS_ALLOWED_ORIGINS: %q: want origins such as https://dash.example.com (no wildcard)", o))
		}
	}
	for _, p := range list(get("TRUSTED_PROXIES")) {
		n, err := parseNet(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}

	fs := flag.NewFlagSet("abacus serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", get("ABACUS_TARGET"), "roles to run: all, or a comma list of api, ingest, analyzer (env ABACUS_TARGET)")
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
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.Targets, err = parseTargets(*target)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, c.validate()
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

// redactURL hides a password in a URL.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	creds := s[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		creds = creds[:i] + ":xxxxx"
	}
	return s[:scheme+3] + creds + s[at:]
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
