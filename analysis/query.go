package analysis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// assignmentsQuery counts distinct assigned users per variant.
const assignmentsQuery = `
SELECT variant_id, uniqExact(user_id) AS users
FROM assignments
WHERE test_id = ?
GROUP BY variant_id`

// Duplicate result rows. Ingest stores each JetStream message once, and
// JetStream drops a client's retry with the same event_id inside
// NATS_DUPLICATE_WINDOW; a retry after the window is stored again. A
// duplicate repeats an event whole (same event_id, user, variant, metric,
// value), so the analysis keeps one row per event_id. Removing duplicates
// with a GROUP BY event_id over every row of a test costs about four times
// the aggregation itself (10M rows: 9.7 s against 2.3 s), so the queries
// find the users who have duplicates instead, cheaply, and remove
// duplicates only in their rows:
//
//   - resultsQuery aggregates, per metric and variant, the users whose rows
//     hold no duplicate (count() equals the number of distinct event_id
//     hashes), and counts the others;
//   - when some user has duplicates, dupUsersQuery aggregates exactly those
//     users after a GROUP BY event_id, and combine merges the two parts.
//
// A hash collision between two distinct event ids of one user only sends
// that user down the exact path; it never changes a number.

// perUser is each user's mean of each metric over their rows, with the
// number of surplus rows (parameter: test id).
const perUser = `
    SELECT metric, variant_id, user_id, avg(value) AS user_value, count() - uniqExact(cityHash64(event_id)) AS dups
    FROM results
    WHERE test_id = ?
    GROUP BY metric, variant_id, user_id`

// resultsQuery returns per metric and variant the number of users without
// duplicate rows, the mean of their per-user means and the sample variance
// of those, then the number of users with duplicate rows: the continuous
// rule, where users without a result are left out. varSampStable is
// Welford's algorithm (the plain varSamp of current ClickHouse releases
// trades precision for speed).
const resultsQuery = `
SELECT metric, variant_id, countIf(dups = 0) AS users, avgIf(user_value, dups = 0) AS mean,
       varSampStableIf(user_value, dups = 0) AS variance, countIf(dups != 0) AS dup_users
FROM (` + perUser + `
)
GROUP BY metric, variant_id`

// dupUsersQuery is resultsQuery's exact complement: the same aggregates
// over the users with duplicate rows, each event counted once (parameters:
// test id, test id).
const dupUsersQuery = `
SELECT metric, variant_id, count() AS users, avg(user_value) AS mean, varSampStable(user_value) AS variance
FROM (
    SELECT metric, variant_id, user_id, avg(value) AS user_value
    FROM (
        SELECT metric, variant_id, user_id, event_id, any(value) AS value
        FROM results
        WHERE test_id = ? AND (metric, variant_id, user_id) IN (
            SELECT metric, variant_id, user_id FROM results WHERE test_id = ?
            GROUP BY metric, variant_id, user_id
            HAVING count() != uniqExact(cityHash64(event_id)))
        GROUP BY metric, variant_id, user_id, event_id
    )
    GROUP BY metric, variant_id, user_id
)
GROUP BY metric, variant_id`

// perUserMetric is the per-user means of one metric (parameters: test id,
// metric), each event counted once.
const perUserMetric = `
    SELECT variant_id, user_id, avg(value) AS user_value
    FROM (
        SELECT variant_id, user_id, event_id, any(value) AS value
        FROM results
        WHERE test_id = ? AND metric = ?
        GROUP BY variant_id, user_id, event_id
    )
    GROUP BY variant_id, user_id`

// perUserMetricNoDups is perUserMetric for a metric that resultsQuery found
// free of duplicates.
const perUserMetricNoDups = `
    SELECT variant_id, user_id, avg(value) AS user_value
    FROM results
    WHERE test_id = ? AND metric = ?
    GROUP BY variant_id, user_id`

// capQuery returns the winsorization cap of one metric: quantileExact(p) of
// the per-user means over every variant, the value at rank floor(p·n) of the
// sorted values (parameters: test id, metric). quantileExact exists in
// ClickHouse 18.16 and in current releases. The level must be a literal
// (ClickHouse rejects a bound parameter there); %s is a formatted float64
// from the validated definition, never user text; the second %s is
// perUserMetric or perUserMetricNoDups.
const capQuery = `SELECT quantileExact(%s)(user_value) FROM (%s)`

// cappedQuery is resultsQuery for one metric with every per-user value
// capped (parameters: cap, cap, test id, metric; %s as in capQuery).
const cappedQuery = `
SELECT variant_id, count() AS users, avg(least(user_value, ?)) AS mean, varSampStable(least(user_value, ?)) AS variance
FROM (%s)
GROUP BY variant_id`

// binaryQuery returns per variant the users who were assigned or have a
// result, and those with at least one non-zero result: the binary rule,
// where assigned users without a result count as 0 (parameters: test id,
// test id, metric). Duplicate events cannot change a maximum, so they need
// no removal.
const binaryQuery = `
SELECT variant_id, count() AS users, sum(converted) AS conversions
FROM (
    SELECT variant_id, user_id, max(converted) AS converted
    FROM (
        SELECT variant_id, user_id, toUInt8(0) AS converted FROM assignments WHERE test_id = ?
        UNION ALL
        SELECT variant_id, user_id, toUInt8(value != 0) AS converted FROM results WHERE test_id = ? AND metric = ?
    )
    GROUP BY variant_id, user_id
)
GROUP BY variant_id`

// load reads a test's aggregates from ClickHouse.
func load(ctx context.Context, conn driver.Conn, t *experiment.Test) (Data, error) {
	d := Data{
		Assignments: map[string]int64{},
		Metrics:     map[string]map[string]stats.Sample{},
		Binary:      map[string]map[string]stats.Proportion{},
		Caps:        map[string]float64{},
	}
	rows, err := conn.Query(ctx, assignmentsQuery, t.ID)
	if err != nil {
		return d, fmt.Errorf("querying assignments: %w", err)
	}
	for rows.Next() {
		var variant string
		var users uint64
		if err := rows.Scan(&variant, &users); err != nil {
			rows.Close()
			return d, fmt.Errorf("scanning assignments: %w", err)
		}
		d.Assignments[variant] = int64(users)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("reading assignments: %w", err)
	}

	dups, err := loadResults(ctx, conn, t, &d)
	if err != nil {
		return d, err
	}
	for _, m := range t.Metrics {
		switch {
		case m.Type == experiment.MetricBinary:
			if err := loadBinary(ctx, conn, t.ID, m.Name, &d); err != nil {
				return d, err
			}
		case m.WinsorizePercentile != nil && d.Metrics[m.Name] != nil:
			if err := loadCapped(ctx, conn, t.ID, m.Name, *m.WinsorizePercentile/100, dups[m.Name], &d); err != nil {
				return d, err
			}
		}
	}
	if err := loadBeyond(ctx, conn, t, &d); err != nil {
		return d, err
	}
	return d, nil
}

// loadResults fills d.Metrics with the continuous rule's samples and
// returns the metrics in which some user has duplicate rows.
func loadResults(ctx context.Context, conn driver.Conn, t *experiment.Test, d *Data) (map[string]bool, error) {
	dups := map[string]bool{}
	put := func(metric, variant string, s stats.Sample) {
		if t.MetricSpec(metric).Type != experiment.MetricContinuous {
			return // binary and ratio metrics have queries of their own
		}
		if d.Metrics[metric] == nil {
			d.Metrics[metric] = map[string]stats.Sample{}
		}
		if prev, ok := d.Metrics[metric][variant]; ok {
			s = stats.Combine(prev, s)
		}
		d.Metrics[metric][variant] = s
	}
	rows, err := conn.Query(ctx, resultsQuery, t.ID)
	if err != nil {
		return nil, fmt.Errorf("querying results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var metric, variant string
		var users, dupUsers uint64
		var mean, variance float64
		if err := rows.Scan(&metric, &variant, &users, &mean, &variance, &dupUsers); err != nil {
			return nil, fmt.Errorf("scanning results: %w", err)
		}
		if dupUsers > 0 {
			dups[metric] = true
		}
		if users > 0 {
			put(metric, variant, sample(users, mean, variance))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	rows.Close()
	if len(dups) == 0 {
		return dups, nil
	}
	rows, err = conn.Query(ctx, dupUsersQuery, t.ID, t.ID)
	if err != nil {
		return nil, fmt.Errorf("querying results with duplicates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var metric, variant string
		var users uint64
		var mean, variance float64
		if err := rows.Scan(&metric, &variant, &users, &mean, &variance); err != nil {
			return nil, fmt.Errorf("scanning results with duplicates: %w", err)
		}
		put(metric, variant, sample(users, mean, variance))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading results with duplicates: %w", err)
	}
	return dups, nil
}

func sample(users uint64, mean, variance float64) stats.Sample {
	if users < 2 {
		variance = 0 // ClickHouse gives inf or nan for one value
	}
	return stats.Sample{N: int64(users), Mean: mean, Variance: variance}
}

func loadBinary(ctx context.Context, conn driver.Conn, testID, metric string, d *Data) error {
	rows, err := conn.Query(ctx, binaryQuery, testID, testID, metric)
	if err != nil {
		return fmt.Errorf("querying binary metric %s: %w", metric, err)
	}
	defer rows.Close()
	out := map[string]stats.Proportion{}
	for rows.Next() {
		var variant string
		var users, conversions uint64
		if err := rows.Scan(&variant, &users, &conversions); err != nil {
			return fmt.Errorf("scanning binary metric %s: %w", metric, err)
		}
		out[variant] = stats.Proportion{N: int64(users), Successes: int64(conversions)}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading binary metric %s: %w", metric, err)
	}
	d.Binary[metric] = out
	return nil
}

func loadCapped(ctx context.Context, conn driver.Conn, testID, metric string, level float64, dups bool, d *Data) error {
	perUser := perUserMetricNoDups
	if dups {
		perUser = perUserMetric
	}
	var limit float64
	if err := conn.QueryRow(ctx, fmt.Sprintf(capQuery, strconv.FormatFloat(level, 'g', -1, 64), perUser), testID, metric).Scan(&limit); err != nil {
		return fmt.Errorf("querying the cap of metric %s: %w", metric, err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(cappedQuery, perUser), limit, limit, testID, metric)
	if err != nil {
		return fmt.Errorf("querying winsorized metric %s: %w", metric, err)
	}
	defer rows.Close()
	out := map[string]stats.Sample{}
	for rows.Next() {
		var variant string
		var users uint64
		var mean, variance float64
		if err := rows.Scan(&variant, &users, &mean, &variance); err != nil {
			return fmt.Errorf("scanning winsorized metric %s: %w", metric, err)
		}
		out[variant] = sample(users, mean, variance)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading winsorized metric %s: %w", metric, err)
	}
	d.Metrics[metric] = out
	d.Caps[metric] = limit
	return nil
}
