// Package analysis computes the statistics of running and stopped tests.
//
// The Runner reads per-variant aggregates of one test from ClickHouse (a
// handful of numbers per variant and metric, never raw rows), turns them into
// an experiment.Report with the pure functions of analysis/stats, and stores
// the report in the AB_REPORTS KV bucket, where the API reads it.
//
// It runs on a timer (every running test, and each stopped test once more
// after it stopped) and on demand: the API sends a request on
// eventv1.SubjectAnalyze to the analyzers' queue group and the Runner replies
// with the fresh report. Timer runs never overlap; on shutdown the Runner
// stops its subscription, lets the runs in flight finish within their query
// timeout, and returns.
//
// Counting rules: a result event is counted once per event_id (ingest
// delivers at least once); a user's several values of a metric are averaged
// into one value per user, and users are the unit of analysis.
//
// The package does not serve HTTP and does not consume JetStream events; it
// does not import api or ingest.
package analysis
