package analysis

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
)

// assignmentsQuery counts distinct assigned users per variant.
const assignmentsQuery = `
SELECT variant_id, uniqExact(user_id) AS users
FROM assignments
WHERE test_id = ?
GROUP BY variant_id`

// resultsQuery returns per metric and variant the number of users, the mean
// of the per-user means, and their sample variance. The innermost query
// keeps each event_id once, so redelivered events do not count twice.
// varSampStable is Welford's algorithm (the plain varSamp of current
// ClickHouse releases trades precision for speed).
const resultsQuery = `
SELECT metric, variant_id, count() AS users, avg(user_value) AS mean, varSampStable(user_value) AS variance
FROM (
    SELECT metric, variant_id, user_id, avg(value) AS user_value
    FROM (
        SELECT metric, event_id, any(variant_id) AS variant_id, any(user_id) AS user_id, any(value) AS value
        FROM results
        WHERE test_id = ?
        GROUP BY metric, event_id
    )
    GROUP BY metric, variant_id, user_id
)
GROUP BY metric, variant_id`

// load reads a test's aggregates from ClickHouse.
func load(ctx context.Context, conn driver.Conn, testID string) (Data, error) {
	d := Data{Assignments: map[string]int64{}, Metrics: map[string]map[string]stats.Sample{}}
	rows, err := conn.Query(ctx, assignmentsQuery, testID)
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

	rows, err = conn.Query(ctx, resultsQuery, testID)
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
		if d.Metrics[metric] == nil {
			d.Metrics[metric] = map[string]stats.Sample{}
		}
		if users < 2 {
			variance = 0 // ClickHouse gives inf or nan for one value
		}
		d.Metrics[metric][variant] = stats.Sample{N: int64(users), Mean: mean, Variance: variance}
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("reading results: %w", err)
	}
	return d, nil
}
