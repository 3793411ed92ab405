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

// dedupResults keeps each result event once (ingest delivers at least once).
const dedupResults = `
        SELECT metric, event_id, any(variant_id) AS variant_id, any(user_id) AS user_id, any(value) AS value
        FROM results
        WHERE test_id = ?
        GROUP BY metric, event_id`

// resultsQuery returns per metric and variant the number of users, the mean
// of the per-user means, and their sample variance: the continuous rule,
// where users without a result are left out. varSampStable is Welford's
// algorithm (the plain varSamp of current ClickHouse releases trades
// precision for speed).
const resultsQuery = `
SELECT metric, variant_id, count() AS users, avg(user_value) AS mean, varSampStable(user_value) AS variance
FROM (
    SELECT metric, variant_id, user_id, avg(value) AS user_value
    FROM (` + dedupResults + `
    )
    GROUP BY metric, variant_id, user_id
)
GROUP BY metric, variant_id`

// perUserMetric is the per-user means of one metric (parameters: test id,
// metric).
const perUserMetric = `
    SELECT variant_id, user_id, avg(value) AS user_value
    FROM (
        SELECT event_id, any(variant_id) AS variant_id, any(user_id) AS user_id, any(value) AS value
        FROM results
        WHERE test_id = ? AND metric = ?
        GROUP BY event_id
    )
    GROUP BY variant_id, user_id`

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

	rows, err = conn.Query(ctx, resultsQuery, t.ID)
	if err != nil {
		return d, fmt.Errorf("querying results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var metric, variant string
		var users uint64
		var mean, variance float64
		if err := rows.Scan(&metric, &variant, &users, &mean, &variance); err != nil {
			return d, fmt.Errorf("scanning results: %w", err)
		}
		if t.MetricSpec(metric).Type == experiment.MetricBinary {
			continue
		}
		if d.Metrics[metric] == nil {
			d.Metrics[metric] = map[string]stats.Sample{}
		}
		d.Metrics[metric][variant] = sample(users, mean, variance)
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("reading results: %w", err)
	}
	rows.Close()

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
	return d, nil
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
