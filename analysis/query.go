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

// The continuous and binary queries read user_aggregates (fold.go): one
// row per user and metric, each event_id counted once, instead of every
// result row. load folds the test's new rows first.

// resultsQuery returns per metric and variant the number of users with a
// result, the mean of their per-user means and the sample variance of
// those: the continuous rule, where users without a result are left out,
// and the number of rows still waiting for the exact step (parameter: test
// id). varSampStable is Welford's algorithm (the plain varSamp of current
// ClickHouse releases trades precision for speed).
const resultsQuery = `
SELECT metric, variant_id, count() AS users, avg(total / events) AS mean,
       varSampStable(total / events) AS variance, countIf(dups != 0) AS pending
FROM user_aggregates FINAL
WHERE test_id = ? AND events > 0
GROUP BY metric, variant_id`

// perUserMetric is the per-user means of one metric (parameters: test id,
// metric).
const perUserMetric = `
    SELECT variant_id, user_id, total / events AS user_value
    FROM user_aggregates FINAL
    WHERE test_id = ? AND metric = ? AND events > 0`

// capQuery returns the winsorization cap of one metric: quantileExact(p) of
// the per-user means over every variant, the value at rank floor(p·n) of the
// sorted values (parameters: test id, metric). quantileExact exists in
// ClickHouse 18.16 and in current releases. The level must be a literal
// (ClickHouse rejects a bound parameter there); %s is a formatted float64
// from the validated definition, never user text.
const capQuery = `SELECT quantileExact(%s)(user_value) FROM (` + perUserMetric + `)`

// cappedQuery is resultsQuery for one metric with every per-user value
// capped (parameters: cap, cap, test id, metric).
const cappedQuery = `
SELECT variant_id, count() AS users, avg(least(user_value, ?)) AS mean, varSampStable(least(user_value, ?)) AS variance
FROM (` + perUserMetric + `)
GROUP BY variant_id`

// binaryQuery returns per variant the users who were assigned or have a
// result, and those with at least one non-zero result: the binary rule,
// where assigned users without a result count as 0 (parameters: test id,
// test id, metric).
const binaryQuery = `
SELECT variant_id, count() AS users, sum(converted) AS conversions
FROM (
    SELECT variant_id, user_id, max(converted) AS converted
    FROM (
        SELECT variant_id, user_id, toUInt8(0) AS converted FROM assignments WHERE test_id = ?
        UNION ALL
        SELECT variant_id, user_id, toUInt8(nonzero > 0) AS converted FROM user_aggregates FINAL
        WHERE test_id = ? AND metric = ? AND events > 0
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

	if err := fold(ctx, conn, t.ID); err != nil {
		return d, err
	}
	if err := loadResults(ctx, conn, t, &d); err != nil {
		return d, err
	}
	for _, m := range t.Metrics {
		switch {
		case m.Type == experiment.MetricBinary:
			if err := loadBinary(ctx, conn, t.ID, m.Name, &d); err != nil {
				return d, err
			}
		case m.WinsorizePercentile != nil && d.Metrics[m.Name] != nil:
			if err := loadCapped(ctx, conn, t.ID, m.Name, *m.WinsorizePercentile/100, &d); err != nil {
				return d, err
			}
		}
	}
	// The data of the test's options: ratio metrics (ratio.go), CUPED
	// (cuped.go) and segments (segments.go).
	for _, m := range t.Metrics {
		if m.Type == experiment.MetricRatio {
			if err := loadRatio(ctx, conn, t.ID, m, &d); err != nil {
				return d, err
			}
		}
	}
	if err := loadCUPED(ctx, conn, t, &d); err != nil {
		return d, err
	}
	if spec := t.MetricSpec(t.PrimaryMetric); spec.Type != experiment.MetricRatio {
		for _, attr := range t.Segments {
			if err := loadSegment(ctx, conn, t.ID, spec, attr, segmentValueLimit(t), &d); err != nil {
				return d, err
			}
		}
	}
	return d, nil
}

// loadResults fills d.Metrics with the continuous rule's samples. Rows
// still waiting for the exact step (fold.go) are finished first; a
// concurrent fold may leave new ones, so it tries a few times.
func loadResults(ctx context.Context, conn driver.Conn, t *experiment.Test, d *Data) error {
	for attempt := 0; ; attempt++ {
		out, pending, err := queryResults(ctx, conn, t)
		if err != nil {
			return err
		}
		if pending == 0 {
			for metric, byVariant := range out {
				d.Metrics[metric] = byVariant
			}
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("per-user aggregates of test %s: %d users still wait for duplicate removal; retry", t.ID, pending)
		}
		if err := foldExact(ctx, conn, t.ID); err != nil {
			return err
		}
	}
}

func queryResults(ctx context.Context, conn driver.Conn, t *experiment.Test) (map[string]map[string]stats.Sample, uint64, error) {
	out := map[string]map[string]stats.Sample{}
	var pending uint64
	rows, err := conn.Query(ctx, resultsQuery, t.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("querying results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var metric, variant string
		var users, waiting uint64
		var mean, variance float64
		if err := rows.Scan(&metric, &variant, &users, &mean, &variance, &waiting); err != nil {
			return nil, 0, fmt.Errorf("scanning results: %w", err)
		}
		pending += waiting
		if t.MetricSpec(metric).Type != experiment.MetricContinuous {
			continue // binary and ratio metrics have queries of their own
		}
		if out[metric] == nil {
			out[metric] = map[string]stats.Sample{}
		}
		out[metric][variant] = sample(users, mean, variance)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading results: %w", err)
	}
	return out, pending, nil
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

func loadCapped(ctx context.Context, conn driver.Conn, testID, metric string, level float64, d *Data) error {
	var limit float64
	if err := conn.QueryRow(ctx, fmt.Sprintf(capQuery, strconv.FormatFloat(level, 'g', -1, 64)), testID, metric).Scan(&limit); err != nil {
		return fmt.Errorf("querying the cap of metric %s: %w", metric, err)
	}
	rows, err := conn.Query(ctx, cappedQuery, limit, limit, testID, metric)
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
