// Package chdb opens ClickHouse connections for Abacus and applies the
// schema migrations. It speaks the native protocol only (the HTTP protocol
// of clickhouse-go fails on ClickHouse 18.16).
package chdb

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// dbName is what a database name may be: it is put into DDL as an identifier.
var dbName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseURL parses a clickhouse://[user[:password]@]host:port/database URL.
// Query parameters are those of clickhouse-go (dial_timeout, max_open_conns,
// compress, ...).
func ParseURL(rawURL string) (*clickhouse.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing ClickHouse URL: %w", err)
	}
	if u.Scheme != "clickhouse" && u.Scheme != "tcp" {
		return nil, fmt.Errorf("ClickHouse URL scheme %q: want clickhouse:// (native protocol)", u.Scheme)
	}
	opts, err := clickhouse.ParseDSN(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing ClickHouse URL: %w", err)
	}
	if opts.Auth.Database == "" {
		opts.Auth.Database = "default"
	}
	if !dbName.MatchString(opts.Auth.Database) {
		return nil, fmt.Errorf("ClickHouse database name %q: want letters, digits and underscores", opts.Auth.Database)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	return opts, nil
}

// Open connects to ClickHouse, creating the database when it does not exist,
// and checks the connection with a ping.
func Open(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
	if err := ensureDatabase(ctx, opts); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("opening ClickHouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pinging ClickHouse at %v: %w", opts.Addr, err)
	}
	return conn, nil
}

// ensureDatabase creates opts' database through a connection to "default":
// a connection that names a missing database fails at the handshake.
func ensureDatabase(ctx context.Context, opts *clickhouse.Options) error {
	if opts.Auth.Database == "default" {
		return nil
	}
	o := *opts
	o.Auth.Database = "default"
	conn, err := clickhouse.Open(&o)
	if err != nil {
		return fmt.Errorf("opening ClickHouse: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+opts.Auth.Database); err != nil {
		return fmt.Errorf("creating database %s at %v: %w", opts.Auth.Database, opts.Addr, err)
	}
	return nil
}
