// Package loadcheck is the ClickHouse side of `abacus loadgen`: it counts
// what a load test's events became in ClickHouse (counts.go), and measures
// the yardstick of end-to-end ingestion, a bare batch insert into a scratch
// copy of the results table (bare.go).
//
// It only reads the tables the migrations create and writes its own scratch
// table; it never imports api, ingest or analysis.
package loadcheck
