package chdb_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/abacus-ab/abacus/internal/chdb"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	"github.com/abacus-ab/abacus/migrations"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		wantDB  string
		wantErr bool
	}{
		{url: "clickhouse://127.0.0.1:9000/abacus", wantDB: "abacus"},
		{url: "clickhouse://user:pw@127.0.0.1:9000/abacus?dial_timeout=2s", wantDB: "abacus"},
		{url: "clickhouse://127.0.0.1:9000", wantDB: "default"},
		{url: "http://127.0.0.1:8123/abacus", wantErr: true},
		{url: "clickhouse://127.0.0.1:9000/ab;drop", wantErr: true},
		{url: "::", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := chdb.ParseURL(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("chdb.ParseURL(%q) error = %v, want error %v", tt.url, err, tt.wantErr)
			}
			if err == nil && o.Auth.Database != tt.wantDB {
				t.Errorf("chdb.ParseURL(%q) database = %q, want %q", tt.url, o.Auth.Database, tt.wantDB)
			}
		})
	}
}

// TestMigrateTwice applies the migrations to a fresh database twice: the
// second run is a no-op, and the tables exist with their columns.
func TestMigrateTwice(t *testing.T) {
	conn, opts := chdbtest.Conn(t) // applied once
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := chdb.Migrate(t.Context(), opts, migrations.FS, log); err != nil {
		t.Fatalf("second Migrate = %v, want nil", err)
	}
	var applied uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	entries, _ := migrations.FS.ReadDir(".")
	sql := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".up.sql") {
			sql++
		}
	}
	if int(applied) != sql {
		t.Errorf("schema_migrations has %d applied versions, want %d (one per file)", applied, sql)
	}
	for _, table := range []string{"assignments", "results"} {
		var n uint64
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.columns WHERE database = ? AND table = ?", opts.Auth.Database, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("table %s missing after migrations", table)
		}
	}
}
