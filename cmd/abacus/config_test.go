package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(*testing.T, *config)
	}{
		{name: "defaults", check: func(t *testing.T, c *config) {
			if c.HTTPAddr != "127.0.0.1:8000" || c.Environment != "production" || len(c.Targets) != 3 ||
				c.ClickHouseURL != "clickhouse://127.0.0.1:9000/abacus" || c.DataDir != "./data" ||
				c.MaxBodyBytes != 10<<20 || c.IngestFlushInterval != 200*time.Millisecond {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "target flag", args: []string{"--target=ingest,api"}, check: func(t *testing.T, c *config) {
			if !c.has(roleAPI) || !c.has(roleIngest) || c.has(roleAnalyzer) {
				t.Errorf("targets = %v, want api and ingest", c.Targets)
			}
		}},
		{name: "target env", env: map[string]string{"ABACUS_TARGET": "analyzer"}, check: func(t *testing.T, c *config) {
			if len(c.Targets) != 1 || !c.has(roleAnalyzer) {
				t.Errorf("targets = %v, want analyzer", c.Targets)
			}
		}},
		{name: "flag beats env", env: map[string]string{"ABACUS_HTTP_ADDR": "127.0.0.1:1"}, args: []string{"--http-addr=127.0.0.1:2"}, check: func(t *testing.T, c *config) {
			if c.HTTPAddr != "127.0.0.1:2" {
				t.Errorf("http addr = %s", c.HTTPAddr)
			}
		}},
		{name: "bad target", args: []string{"--target=web"}, wantErr: `target "web"`},
		{name: "bad duration", env: map[string]string{"INGEST_FLUSH_INTERVAL": "fast"}, wantErr: "INGEST_FLUSH_INTERVAL"},
		{name: "bad number", env: map[string]string{"INGEST_WORKERS": "two"}, wantErr: "INGEST_WORKERS"},
		{name: "bad environment", env: map[string]string{"ENVIRONMENT": "staging"}, wantErr: "ENVIRONMENT"},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "bad body size", env: map[string]string{"INPUT_MAX_REQUEST_SIZE_MB": "0"}, wantErr: "INPUT_MAX_REQUEST_SIZE_MB"},
		{name: "embedded listen with external url", env: map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_EMBEDDED_LISTEN": "127.0.0.1:4222"}, wantErr: "NATS_EMBEDDED_LISTEN"},
		{name: "proxies and origins", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,::1", "CORS_ALLOWED_ORIGINS": "https://a.example.com,http://localhost:3000"}, check: func(t *testing.T, c *config) {
			if len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "192.0.2.1/32" || c.TrustedProxies[2].String() != "::1/128" || len(c.CORSOrigins) != 2 {
				t.Errorf("proxies %v, origins %v", c.TrustedProxies, c.CORSOrigins)
			}
		}},
		{name: "bad proxy", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, wantErr: `TRUSTED_PROXIES: "proxy.local"`},
		{name: "wildcard origin", env: map[string]string{"CORS_ALLOWED_ORIGINS": "*"}, wantErr: "CORS_ALLOWED_ORIGINS"},
		{name: "rate limits", env: map[string]string{
			"RATE_LIMIT_REQUESTS_PER_MINUTE": "100", "RATE_LIMIT_REQUESTS_PER_DAY": "0", "RATE_LIMIT_AUTH_FAILURES": "5/0/0",
			"RATE_LIMIT_ENDPOINTS": "GET /api/ab-testing/tests/{test_id}/analyze=30/600/0; POST /api/ab-testing/power=5/0/0",
		}, check: func(t *testing.T, c *config) {
			g := c.RateLimit.Global
			if !c.RateLimitEnabled || c.RateLimitShared || len(g.Windows) != 2 || g.Windows[0].Limit != 100 || g.Windows[1].Limit != 1000 {
				t.Errorf("enabled %v shared %v global %+v", c.RateLimitEnabled, c.RateLimitShared, g)
			}
			if a := c.RateLimit.AuthFailures; len(a.Windows) != 1 || a.Windows[0].Limit != 5 {
				t.Errorf("auth failures %+v", a)
			}
			e := c.RateLimit.Endpoints["GET /api/ab-testing/tests/{test_id}/analyze"]
			if len(c.RateLimit.Endpoints) != 2 || len(e.Windows) != 2 || e.Windows[0].Limit != 30 || e.Windows[1].Limit != 600 {
				t.Errorf("endpoints %+v", c.RateLimit.Endpoints)
			}
		}},
		{name: "rate limits auto", env: map[string]string{"ENVIRONMENT": "development", "NATS_URL": "nats://127.0.0.1:4222"}, check: func(t *testing.T, c *config) {
			if c.RateLimitEnabled || !c.RateLimitShared {
				t.Errorf("development with an external NATS: enabled %v shared %v, want off and shared", c.RateLimitEnabled, c.RateLimitShared)
			}
		}},
		{name: "data plane limits", env: map[string]string{"RATE_LIMIT_DATA_PLANE": "50000/0/9000000"}, check: func(t *testing.T, c *config) {
			d := c.RateLimit.DataPlane
			if d.Name != "data_plane" || len(d.Windows) != 2 || d.Windows[0].Limit != 50000 || d.Windows[1].Name != "day" || d.Windows[1].Limit != 9000000 {
				t.Errorf("data plane %+v", d)
			}
		}},
		{name: "flag values exempt by default", env: map[string]string{}, check: func(t *testing.T, c *config) {
			if got := c.Validation.ExemptFields; !slices.Equal(got, []string{"variants[*].configuration", "variants[*].value"}) {
				t.Errorf("default exempt fields %v, want each variant's configuration and value", got)
			}
		}},
		{name: "data plane defaults", env: map[string]string{}, check: func(t *testing.T, c *config) {
			if d := c.RateLimit.DataPlane; len(d.Windows) != 3 || d.Windows[0].Limit != 120000 || d.Windows[1].Limit != 6000000 || d.Windows[2].Limit != 100000000 {
				t.Errorf("default data plane %+v, want 120000/6000000/100000000", d)
			}
		}},
		{name: "bad data plane limit", env: map[string]string{"RATE_LIMIT_DATA_PLANE": "lots"}, wantErr: "RATE_LIMIT_DATA_PLANE"},
		{name: "bad endpoint limit", env: map[string]string{"RATE_LIMIT_ENDPOINTS": "GET /x=ten/0/0"}, wantErr: "RATE_LIMIT_ENDPOINTS"},
		{name: "bad auth failure limit", env: map[string]string{"RATE_LIMIT_AUTH_FAILURES": "0/0/0"}, wantErr: "RATE_LIMIT_AUTH_FAILURES"},
		{name: "bad rate limit switch", env: map[string]string{"RATE_LIMIT_ENABLED": "sometimes"}, wantErr: "RATE_LIMIT_ENABLED"},
		{name: "cache defaults", env: map[string]string{"ANALYSIS_INTERVAL": "30s", "CACHE_QUERY_SIZE": "100", "CACHE_ANALYSIS_MAX_MB": "0"}, check: func(t *testing.T, c *config) {
			if !c.CacheEnabled || c.Cache.Analysis.TTL != 30*time.Second || c.Cache.Query.MaxEntries != 100 || c.Cache.Query.TTL != 30*time.Minute ||
				c.Cache.General.TTL != time.Hour || !c.Cache.Analysis.Disabled || c.Cache.Tests.Disabled {
				t.Errorf("cache config %+v", c.Cache)
			}
		}},
		{name: "cache off", env: map[string]string{"CACHE_ENABLED": "false"}, check: func(t *testing.T, c *config) {
			if !c.Cache.Tests.Disabled || !c.Cache.Query.Disabled || !c.Cache.General.Disabled || !c.Cache.Analysis.Disabled {
				t.Errorf("CACHE_ENABLED=false left a layer on: %+v", c.Cache)
			}
		}},
		{name: "bad cache ttl", env: map[string]string{"CACHE_QUERY_TTL": "soon"}, wantErr: "CACHE_QUERY_TTL"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no .env here
			c, err := loadConfig(tt.args, envFrom(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig() error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig() = %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestDotEnv(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, ".env", "ABACUS_HTTP_ADDR=127.0.0.1:9999\nLOG_LEVEL=debug\n")
	c, err := loadConfig(nil, envFrom(map[string]string{"LOG_LEVEL": "warn"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9999" {
		t.Errorf("HTTPAddr = %s, want the .env value", c.HTTPAddr)
	}
	if c.LogLevel.String() != "WARN" {
		t.Errorf("LogLevel = %s, want the environment to beat .env", c.LogLevel)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"password", "clickhouse://u:secret@h:9000/db", "clickhouse://u:xxxxx@h:9000/db"},
		{"no userinfo", "nats://h:4222", "nats://h:4222"},
		{"no password", "clickhouse://u@h:9000/db", "clickhouse://u@h:9000/db"},
		{"query kept", "clickhouse://u:secret@h:9000/db?dial_timeout=1s", "clickhouse://u:xxxxx@h:9000/db?dial_timeout=1s"},
		{"multi", "nats://a:pw@h1:4222,nats://b:pw2@h2:4222", "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222"},
		{"multi with spaces", "nats://a:pw@h1:4222, nats://h2:4222", "nats://a:xxxxx@h1:4222,nats://h2:4222"},
		{"no scheme", "a:pw@h1:4222,h2:4222", "a:xxxxx@h1:4222,h2:4222"},
		{"at sign in password", "nats://a:p@ss@h:4222", "nats://a:xxxxx@h:4222"},
		{"unparsable", "nats://a:pw@h:port:x", "<unparsable>"},
		{"unparsable control character", "nats://a:pw\x7f@h:4222", "<unparsable>"},
		{"one unparsable server", "nats://a:pw@h1:4222,nats://b:pw2@[h2", "nats://a:xxxxx@h1:4222,<unparsable>"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redactURL(tt.in)
			if got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"secret", "pw"} {
				if strings.Contains(got, secret) {
					t.Errorf("redactURL(%q) = %q: it leaks %q", tt.in, got, secret)
				}
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"version"}, envFrom(nil), &out, &errb); err != nil || !strings.HasPrefix(out.String(), "abacus ") {
		t.Errorf("version = %v %q", err, out.String())
	}
	if err := run(t.Context(), []string{"frobnicate"}, envFrom(nil), &out, &errb); err == nil {
		t.Errorf("unknown command: want an error")
	}
	if err := run(t.Context(), nil, envFrom(nil), &out, &errb); err == nil {
		t.Errorf("no command: want an error")
	}
}

// TestJSONLogDurations checks that production logs write durations as
// text, not as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&config{Environment: "production"}, &buf).Info("x", "took", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), `"took":"1.5s"`) {
		t.Errorf("log line %s, want \"took\":\"1.5s\"", buf.String())
	}
}
