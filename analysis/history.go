package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/experiment"
)

// insertSnapshot names every column: ClickHouse 18.16 rejects a batch
// without a column list.
const insertSnapshot = `INSERT INTO analysis_snapshots (test_id, computed_at, metric, variant_id, control_variant_id,
 sample_size, mean, absolute_difference, ci_lower, ci_upper, relative_difference, relative_ci_lower,
 relative_ci_upper, p_value, p_value_adjusted, decision, trigger)`

// writeSnapshot stores one row per metric and variant of rep.
func writeSnapshot(ctx context.Context, conn driver.Conn, rep *experiment.Report, trigger string) error {
	b, err := conn.PrepareBatch(ctx, insertSnapshot)
	if err != nil {
		return fmt.Errorf("preparing the snapshot: %w", err)
	}
	for _, m := range rep.Metrics {
		cmp := make(map[string]experiment.Comparison, len(m.Comparisons))
		for _, c := range m.Comparisons {
			cmp[c.VariantID] = c
		}
		for _, v := range m.Variants {
			c := cmp[v.VariantID]
			if err := b.Append(rep.TestID, rep.ComputedAt, m.Metric, v.VariantID, rep.ControlVariant,
				v.SampleSize, v.MeanValue, c.AbsoluteDifference, c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper,
				c.RelativeDifference, c.RelativeCILower, c.RelativeCIUpper, c.PValue, c.PValueAdjusted,
				m.Decision, trigger); err != nil {
				_ = b.Abort()
				return fmt.Errorf("appending to the snapshot: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("sending the snapshot: %w", err)
	}
	return nil
}

// History is the response of GET .../analyze/history: per variant, the
// snapshots of one metric, oldest first.
type History struct {
	TestID           string          `json:"test_id"`
	Metric           string          `json:"metric"`
	ControlVariantID string          `json:"control_variant_id"`
	Series           []VariantSeries `json:"series"`
}

// VariantSeries is one variant's snapshots.
type VariantSeries struct {
	VariantID string         `json:"variant_id"`
	Points    []HistoryPoint `json:"points"`
}

// HistoryPoint is one snapshot of one variant. The comparison fields are
// null for control and when no test was possible.
type HistoryPoint struct {
	ComputedAt         time.Time `json:"computed_at"`
	SampleSize         int64     `json:"sample_size"`
	Mean               *float64  `json:"mean"`
	AbsoluteDifference *float64  `json:"absolute_difference"`
	CILower            *float64  `json:"confidence_interval_lower"`
	CIUpper            *float64  `json:"confidence_interval_upper"`
	RelativeDifference *float64  `json:"relative_difference"`
	RelativeCILower    *float64  `json:"relative_ci_lower"`
	RelativeCIUpper    *float64  `json:"relative_ci_upper"`
	PValue             *float64  `json:"p_value"`
	PValueAdjusted     *float64  `json:"p_value_adjusted"`
	Decision           string    `json:"decision"`
}

// historyLimit bounds the points per variant (a week at one run a minute).
const historyLimit = 10080

// historyQuery reads the newest snapshots of one metric; load reverses them.
const historyQuery = `
SELECT variant_id, computed_at, sample_size, mean, absolute_difference, ci_lower, ci_upper,
       relative_difference, relative_ci_lower, relative_ci_upper, p_value, p_value_adjusted, decision
FROM analysis_snapshots
WHERE test_id = ? AND metric = ?
ORDER BY computed_at DESC, variant_id
LIMIT ? BY variant_id`

// loadHistory reads a metric's history of test t.
func loadHistory(ctx context.Context, conn driver.Conn, t *experiment.Test, metric string) (*History, error) {
	h := &History{TestID: t.ID, Metric: metric, ControlVariantID: t.ControlVariantID, Series: []VariantSeries{}}
	rows, err := conn.Query(ctx, historyQuery, t.ID, metric, historyLimit)
	if err != nil {
		return nil, fmt.Errorf("querying the history: %w", err)
	}
	defer rows.Close()
	byVariant := map[string][]HistoryPoint{}
	for rows.Next() {
		var v string
		var p HistoryPoint
		if err := rows.Scan(&v, &p.ComputedAt, &p.SampleSize, &p.Mean, &p.AbsoluteDifference, &p.CILower, &p.CIUpper,
			&p.RelativeDifference, &p.RelativeCILower, &p.RelativeCIUpper, &p.PValue, &p.PValueAdjusted, &p.Decision); err != nil {
			return nil, fmt.Errorf("scanning the history: %w", err)
		}
		p.ComputedAt = p.ComputedAt.UTC()
		byVariant[v] = append(byVariant[v], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	for _, v := range t.Variants {
		pts := byVariant[v.ID]
		for i, j := 0, len(pts)-1; i < j; i, j = i+1, j-1 {
			pts[i], pts[j] = pts[j], pts[i]
		}
		if pts == nil {
			pts = []HistoryPoint{}
		}
		h.Series = append(h.Series, VariantSeries{VariantID: v.ID, Points: pts})
	}
	return h, nil
}
