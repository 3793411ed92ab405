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
// stops its subscription, starts no further run, lets the runs in flight
// finish within their own query timeout (they do not see the shutdown's
// cancellation), and returns.
//
// Counting rules: a result event is counted once per event_id (ingest
// delivers at least once), and users are the unit of analysis. A continuous
// metric's value for a user is the mean of their results, and users without
// a result are left out; a binary metric's value is 1 when any of their
// results is non-zero, and every assigned user without a result counts as 0
// (the assignments table is joined in ClickHouse). A winsorized metric caps
// per-user values at ClickHouse's quantileExact of all users' values.
//
// Per-user aggregates (fold.go): the continuous, binary and winsorized
// queries read the user_aggregates table, one row per user and metric with
// each event_id counted once, which every analysis first brings up to date
// for the users with new rows. A test of 10M rows from 1M users then
// analyzes in about 0.3 s on a 2-core machine instead of 2.3 s. CUPED and
// segments take their per-user values from the aggregates too (and the
// covariates and attributes from their own tables); ratio metrics still
// read the raw rows.
//
// Decisions (report.go): Welch's t-test or the unpooled two-proportion
// z-test per treatment against control, Fieller intervals for relative
// lifts, Holm (default) or Benjamini-Hochberg adjusted p-values per metric,
// the winner on adjusted p-values in the metric's direction, withheld on a
// sample ratio mismatch (chi-square p < 0.001) or a guardrail violation.
//
// Beyond the fixed horizon, per the test's options (report.go
// compareWithOptions applies them to each comparison): with analysis_method
// sequential (sequential.go), always-valid p-values and confidence
// sequences per comparison, a sequential SRM check and non-inferiority
// test, and the winner decided on them; with bayesian (bayes.go), the
// posterior of the relative lift (chance to beat control, risk, credible
// interval, risk-threshold decision); guardrails with a
// non_inferiority_margin (noninferiority.go) withhold the winner unless its
// one-sided test shows it not worse; ratio metrics (ratio.go) from per-user
// sums of two recorded metrics (one query: n, means, variances, covariance
// per variant) with the delta method; CUPED (cuped.go) on continuous
// metrics from recorded covariates or, when enabled, the same metric in
// other tests during the lookback window, the comparison then being the
// adjusted one; and the primary metric by each declared segment attribute
// (segments.go), with p-values corrected over segments and a heterogeneity
// scan. Each of these files holds its concept's queries and its part of
// the report.
//
// Every run also writes a snapshot of each metric and variant into the
// analysis_snapshots table; the analyzer answers history requests
// (eventv1.SubjectHistory) for the API, which has no ClickHouse access.
// Concurrent requests for one test share one computation (singleflight).
// Power plans need no data: the API computes them with stats.Plan.
//
// The package does not serve HTTP and does not consume JetStream events; it
// does not import api or ingest.
package analysis
