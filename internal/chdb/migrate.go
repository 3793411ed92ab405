package chdb

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Why not goose or golang-migrate: goose v3.30's ClickHouse dialect writes its
// version rows with INSERT ... VALUES through database/sql, and against
// ClickHouse 18.16 that INSERT never completes (the server waits for a data
// block that clickhouse-go does not send); golang-migrate's ClickHouse driver
// is built on clickhouse-go v1, a second driver. The runner below is small and
// uses the native API that the rest of Abacus uses.

// versionTable records applied migrations.
const versionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = MergeTree() ORDER BY version`

var migrationName = regexp.MustCompile(`^(\d+)_([A-Za-z0-9_]+)\.up\.sql$`)

type migration struct {
	version    uint32
	name, path string
}

// Migrate applies every NNNN_name.up.sql file of fsys that the database has
// not recorded, in version order, and records each. Applying twice is a
// no-op. The database is created when missing.
func Migrate(ctx context.Context, opts *clickhouse.Options, fsys fs.FS, log *slog.Logger) error {
	conn, err := Open(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	return migrate(ctx, conn, fsys, log)
}

func migrate(ctx context.Context, conn driver.Conn, fsys fs.FS, log *slog.Logger) error {
	all, err := listMigrations(fsys)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, versionTable); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied := map[uint32]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	n := 0
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		start := time.Now()
		sql, err := fs.ReadFile(fsys, m.path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", m.path, err)
		}
		for i, stmt := range splitStatements(string(sql)) {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("applying %s (statement %d): %w", m.path, i+1, err)
			}
		}
		if err := record(ctx, conn, m); err != nil {
			return fmt.Errorf("recording %s: %w", m.path, err)
		}
		n++
		log.Info("migration applied", "version", m.version, "file", m.path, "duration", time.Since(start))
	}
	latest := uint32(0)
	if len(all) > 0 {
		latest = all[len(all)-1].version
	}
	log.Info("schema up to date", "version", latest, "applied", n)
	return nil
}

// record inserts the version row. It uses a native batch: an INSERT ...
// VALUES sent through Exec waits forever for a data block on 18.16.
func record(ctx context.Context, conn driver.Conn, m migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(m.version, m.name, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

func listMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var out []migration
	seen := map[uint32]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version: %w", e.Name(), err)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		out = append(out, migration{version: uint32(v), name: m[2], path: e.Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements splits SQL at semicolons that end a line, dropping
// comment-only and empty statements.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		code := false
		for _, line := range strings.Split(s, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
				code = true
				break
			}
		}
		if code {
			out = append(out, s)
		}
	}
	for _, line := range strings.SplitAfter(sql, "\n") {
		trimmed := strings.TrimRight(line, " \t\r\n")
		if strings.HasSuffix(trimmed, ";") && !strings.HasPrefix(strings.TrimSpace(trimmed), "--") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return out
}
