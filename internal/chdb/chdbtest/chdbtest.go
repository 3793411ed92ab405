// Package chdbtest gives tests a real ClickHouse database of their own.
//
// The server's address comes from ABACUS_TEST_CLICKHOUSE_URL (make test sets
// it after starting a local server). Without it tests that need ClickHouse
// skip, unless ABACUS_REQUIRE_CLICKHOUSE=1 (set by make test and CI), which
// turns a missing or unreachable server into a failure.
package chdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/migrations"
)

// Environment variables read by the kit.
const (
	EnvURL     = "ABACUS_TEST_CLICKHOUSE_URL"
	EnvRequire = "ABACUS_REQUIRE_CLICKHOUSE"
)

var (
	once    sync.Once
	baseOpt *clickhouse.Options
	admin   driver.Conn
	initErr error
)

func setup() {
	raw := os.Getenv(EnvURL)
	if raw == "" {
		initErr = fmt.Errorf("%s is not set", EnvURL)
		return
	}
	baseOpt, initErr = chdb.ParseURL(raw)
	if initErr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := *baseOpt
	o.Auth.Database = "default"
	admin, initErr = chdb.Open(ctx, &o)
}

// Server returns the options of the test server, skipping or failing t when
// there is none. The options name the "default" database.
func Server(t testing.TB) *clickhouse.Options {
	t.Helper()
	once.Do(setup)
	if initErr != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("ClickHouse is required (%s=1) but unavailable: %v", EnvRequire, initErr)
		}
		t.Skipf("skipping: no ClickHouse (%v); run make test, or set %s", initErr, EnvURL)
	}
	o := *baseOpt
	o.Auth.Database = "default"
	return &o
}

// Database creates a fresh database with every migration applied, drops it
// when the test ends, and returns options that name it.
func Database(t testing.TB) *clickhouse.Options {
	t.Helper()
	o := Server(t)
	var b [6]byte
	rand.Read(b[:])
	o.Auth.Database = "abacus_test_" + hex.EncodeToString(b[:])
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := chdb.Migrate(ctx, o, migrations.FS, log); err != nil {
		t.Fatalf("migrating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+o.Auth.Database); err != nil {
			t.Errorf("dropping test database: %v", err)
		}
	})
	return o
}

// Conn returns a connection to a fresh migrated database (see Database),
// closed when the test ends.
func Conn(t testing.TB) (driver.Conn, *clickhouse.Options) {
	t.Helper()
	o := Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chdb.Open(ctx, o)
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, o
}
