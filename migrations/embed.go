// Package migrations holds the ClickHouse schema of Abacus as ordered SQL
// files, embedded into the binary: NNNN_name.up.sql is applied by
// "abacus migrate" and at "abacus serve" start; NNNN_name.down.sql reverts it
// by hand. Statements are separated by a semicolon at the end of a line.
//
// Every statement must be idempotent (CREATE ... IF NOT EXISTS, ...): two
// replicas starting at once may both apply a version before either records
// it. The SQL runs on ClickHouse 18.16 and on current releases.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
