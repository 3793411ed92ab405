package analysis

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// The queries of the analyses beyond the fixed-horizon tests. Each returns
// sufficient statistics per variant (and segment), never per-user rows,
// and counts each event_id once: result_covariates and
// assignment_attributes may hold an event twice (see migration 0004).

// ratioQuery returns per variant the moments of the users' numerator and
// denominator sums: n, means, sample variances and sample covariance. The
// users are those with a result of either metric; a missing side is 0
// (parameters: numerator, denominator, test id, numerator, denominator).
const ratioQuery = `
SELECT variant_id, count() AS users, avg(num) AS num_mean, avg(den) AS den_mean,
       varSampStable(num) AS num_var, varSampStable(den) AS den_var, covarSampStable(num, den) AS cov
FROM (
    SELECT variant_id, user_id, sumIf(value, metric = ?) AS num, sumIf(value, metric = ?) AS den
    FROM (
        SELECT variant_id, user_id, metric, any(value) AS value
        FROM results
        WHERE test_id = ? AND metric IN (?, ?)
        GROUP BY variant_id, user_id, metric, event_id
    )
    GROUP BY variant_id, user_id
)
GROUP BY variant_id`

// covariateMetricsQuery lists the metrics of a test with recorded
// covariates (parameter: test id).
const covariateMetricsQuery = `SELECT DISTINCT metric FROM result_covariates WHERE test_id = ?`

// cupedQuery returns per variant, over the users with a result of the
// metric, the moments of their mean value y, of their covariate x (0 for a
// user without one) and of the indicator h of having one: n, users with a
// covariate, means, sample variances and covariances. queryCUPED turns
// them into the moments of the covariate with the missing ones imputed.
// %s is the covariate subquery (user_id, x, has_x). Parameters: test id,
// metric, then the subquery's.
const cupedQuery = `
SELECT variant_id, count() AS users, sum(has_x) AS with_x,
       avg(user_value) AS y_mean, varSampStable(user_value) AS y_var,
       avg(x) AS x_mean, varSampStable(x) AS x_var, covarSampStable(x, user_value) AS xy_cov,
       varSampStable(has_x) AS h_var, covarSampStable(x, has_x) AS xh_cov, covarSampStable(has_x, user_value) AS hy_cov
FROM (
    SELECT variant_id, user_id, user_value, x, has_x
    FROM (` + perUserMetric + `)
    ANY LEFT JOIN (%s) USING user_id
)
GROUP BY variant_id`

// covariatesOfTest is each user's mean recorded covariate of one metric
// (parameters: test id, metric).
const covariatesOfTest = `
        SELECT user_id, avg(covariate) AS x, toUInt64(1) AS has_x
        FROM (
            SELECT user_id, event_id, any(covariate) AS covariate
            FROM result_covariates
            WHERE test_id = ? AND metric = ?
            GROUP BY user_id, event_id
        )
        GROUP BY user_id`

// covariatesFromLookback is each user's mean of the same metric in other
// tests during the lookback window, for the users of this test only, which
// keeps the aggregation small however many users other tests had; the
// window prunes the monthly partitions (parameters: metric, test id, window
// start and end in Unix seconds, test id, metric).
const covariatesFromLookback = `
        SELECT user_id, avg(value) AS x, toUInt64(1) AS has_x
        FROM (
            SELECT user_id, test_id, event_id, any(value) AS value
            FROM results
            WHERE metric = ? AND test_id != ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?)
              AND user_id IN (SELECT user_id FROM results WHERE test_id = ? AND metric = ?)
            GROUP BY user_id, test_id, event_id
        )
        GROUP BY user_id`

// segmentOfUser is each assigned user's value of one attribute, from their
// latest assignment with attributes (” when it lacks the key; parameters:
// attribute key, test id).
const segmentOfUser = `
        SELECT user_id, argMax(attribute_values[indexOf(attribute_keys, ?)], event_time) AS seg
        FROM assignment_attributes
        WHERE test_id = ?
        GROUP BY user_id`

// segmentContinuousQuery is resultsQuery's continuous rule by segment
// (parameters: test id, metric, attribute key, test id).
const segmentContinuousQuery = `
SELECT seg, variant_id, count() AS users, avg(user_value) AS mean, varSampStable(user_value) AS variance
FROM (` + perUserMetric + `)
ANY LEFT JOIN (` + segmentOfUser + `) USING user_id
GROUP BY seg, variant_id`

// segmentBinaryQuery is binaryQuery by segment (parameters: test id, test
// id, metric, attribute key, test id).
const segmentBinaryQuery = `
SELECT seg, variant_id, count() AS users, sum(converted) AS conversions
FROM (
    SELECT variant_id, user_id, max(converted) AS converted
    FROM (
        SELECT variant_id, user_id, toUInt8(0) AS converted FROM assignments WHERE test_id = ?
        UNION ALL
        SELECT variant_id, user_id, toUInt8(value != 0) AS converted FROM results WHERE test_id = ? AND metric = ?
    )
    GROUP BY variant_id, user_id
)
ANY LEFT JOIN (` + segmentOfUser + `) USING user_id
GROUP BY seg, variant_id`

// loadBeyond adds to d the data of ratio metrics, CUPED and segments.
func loadBeyond(ctx context.Context, conn driver.Conn, t *experiment.Test, d *Data) error {
	for _, m := range t.Metrics {
		if m.Type == experiment.MetricRatio {
			if err := loadRatio(ctx, conn, t.ID, m, d); err != nil {
				return err
			}
		}
	}
	if err := loadCUPED(ctx, conn, t, d); err != nil {
		return err
	}
	spec := t.MetricSpec(t.PrimaryMetric)
	for _, attr := range t.Segments {
		if spec.Type == experiment.MetricRatio {
			break
		}
		if err := loadSegment(ctx, conn, t.ID, spec, attr, segmentValueLimit(t), d); err != nil {
			return err
		}
	}
	return nil
}

func loadRatio(ctx context.Context, conn driver.Conn, testID string, m experiment.Metric, d *Data) error {
	rows, err := conn.Query(ctx, ratioQuery, m.Numerator, m.Denominator, testID, m.Numerator, m.Denominator)
	if err != nil {
		return fmt.Errorf("querying ratio metric %s: %w", m.Name, err)
	}
	defer rows.Close()
	out := map[string]stats.RatioSample{}
	for rows.Next() {
		var variant string
		var users uint64
		var nm, dm, nv, dv, cov float64
		if err := rows.Scan(&variant, &users, &nm, &dm, &nv, &dv, &cov); err != nil {
			return fmt.Errorf("scanning ratio metric %s: %w", m.Name, err)
		}
		r := stats.RatioSample{N: int64(users), NumeratorMean: nm, DenominatorMean: dm}
		if users > 1 { // ClickHouse gives inf or nan for one user
			r.NumeratorVariance, r.DenominatorVariance, r.Covariance = nv, dv, cov
		}
		out[variant] = r
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading ratio metric %s: %w", m.Name, err)
	}
	if d.Ratios == nil {
		d.Ratios = map[string]map[string]stats.RatioSample{}
	}
	d.Ratios[m.Name] = out
	return nil
}

// loadCUPED reads the covariate moments of every continuous metric (not
// winsorized) that has recorded covariates, and, when the test enables
// CUPED and has started, of the others from the lookback window.
func loadCUPED(ctx context.Context, conn driver.Conn, t *experiment.Test, d *Data) error {
	recorded := map[string]bool{}
	rows, err := conn.Query(ctx, covariateMetricsQuery, t.ID)
	if err != nil {
		return fmt.Errorf("querying covariate metrics: %w", err)
	}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return fmt.Errorf("scanning covariate metrics: %w", err)
		}
		recorded[m] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading covariate metrics: %w", err)
	}
	lookback := t.CUPED != nil && t.CUPED.Enabled && t.StartedAt != nil && t.CUPED.LookbackDuration() > 0
	for metric := range d.Metrics {
		spec := t.MetricSpec(metric)
		if spec.Type != experiment.MetricContinuous || spec.WinsorizePercentile != nil {
			continue
		}
		var cd CUPEDData
		var err error
		switch {
		case recorded[metric]:
			cd, err = queryCUPED(ctx, conn, fmt.Sprintf(cupedQuery, covariatesOfTest), metric, t.ID, metric, t.ID, metric)
			cd.Source = CUPEDFromCovariates
		case lookback:
			end := t.StartedAt.UTC()
			start := end.Add(-t.CUPED.LookbackDuration())
			cd, err = queryCUPED(ctx, conn, fmt.Sprintf(cupedQuery, covariatesFromLookback), metric, t.ID, metric, metric, t.ID, start.Unix(), end.Unix(), t.ID, metric)
			cd.Source, cd.Lookback = CUPEDFromLookback, t.CUPED.Lookback
		default:
			continue
		}
		if err != nil {
			return err
		}
		var with int64
		for _, n := range cd.WithCovariate {
			with += n
		}
		if with == 0 {
			continue
		}
		if d.CUPED == nil {
			d.CUPED = map[string]CUPEDData{}
		}
		d.CUPED[metric] = cd
	}
	return nil
}

// queryCUPED runs q, cupedQuery with a covariate subquery, for metric.
func queryCUPED(ctx context.Context, conn driver.Conn, q, metric string, args ...any) (CUPEDData, error) {
	cd := CUPEDData{Arms: map[string]stats.CovariateSample{}, WithCovariate: map[string]int64{}}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return cd, fmt.Errorf("querying covariates of metric %s: %w", metric, err)
	}
	defer rows.Close()
	type moments struct {
		s                   stats.CovariateSample
		hMean, hVar, xh, hy float64
	}
	arms := map[string]moments{}
	var xSum, withSum float64
	for rows.Next() {
		var variant string
		var users, with uint64
		var ym, yv, xm, xv, cov, hv, xh, hy float64
		if err := rows.Scan(&variant, &users, &with, &ym, &yv, &xm, &xv, &cov, &hv, &xh, &hy); err != nil {
			return cd, fmt.Errorf("scanning covariates of metric %s: %w", metric, err)
		}
		m := moments{s: stats.CovariateSample{N: int64(users), Mean: ym, CovariateMean: xm}, hMean: float64(with) / float64(users)}
		if users > 1 { // ClickHouse gives inf or nan for one user
			m.s.Variance, m.s.CovariateVariance, m.s.Covariance = yv, xv, cov
			m.hVar, m.xh, m.hy = hv, xh, hy
		}
		arms[variant] = m
		cd.WithCovariate[variant] = int64(with)
		xSum += xm * float64(users)
		withSum += float64(with)
	}
	if err := rows.Err(); err != nil {
		return cd, fmt.Errorf("reading covariates of metric %s: %w", metric, err)
	}
	c := 0.0
	if withSum > 0 {
		c = xSum / withSum
	}
	for variant, m := range arms {
		cd.Arms[variant] = imputeCovariate(m.s, c, m.hMean, m.hVar, m.xh, m.hy)
	}
	return cd, nil
}

// imputeCovariate gives the users without a covariate the value c (the
// mean covariate of those with one, all variants pooled) instead of 0. With
// h the indicator of having a covariate, the imputed covariate is
// x' = x + c(1 - h), so that
//
//	mean x' = mean x + c(1 - mean h)
//	Var x'  = Var x + c²Var h - 2c Cov(x, h)
//	Cov(x', y) = Cov(x, y) - c Cov(h, y).
//
// Zero fills would make "has no history" look like "had 0", which weakens
// the correlation that CUPED relies on; any fixed function of pre-test data
// keeps the adjusted estimate unbiased.
func imputeCovariate(s stats.CovariateSample, c, hMean, hVar, xh, hy float64) stats.CovariateSample {
	s.CovariateMean += c * (1 - hMean)
	s.CovariateVariance = max(0, s.CovariateVariance+c*c*hVar-2*c*xh)
	s.Covariance -= c * hy
	return s
}

// loadSegment reads the primary metric by the values of one attribute.
func loadSegment(ctx context.Context, conn driver.Conn, testID string, spec experiment.Metric, attr string, limit int, d *Data) error {
	binary := spec.Type == experiment.MetricBinary
	var (
		rows driver.Rows
		err  error
	)
	if binary {
		rows, err = conn.Query(ctx, segmentBinaryQuery, testID, testID, spec.Name, attr, testID)
	} else {
		rows, err = conn.Query(ctx, segmentContinuousQuery, testID, spec.Name, attr, testID)
	}
	if err != nil {
		return fmt.Errorf("querying segments by %s: %w", attr, err)
	}
	defer rows.Close()
	sd := SegmentData{Continuous: map[string]map[string]stats.Sample{}, Binary: map[string]map[string]stats.Proportion{}}
	for rows.Next() {
		var seg, variant string
		var n uint64
		if binary {
			var conv uint64
			if err := rows.Scan(&seg, &variant, &n, &conv); err != nil {
				return fmt.Errorf("scanning segments by %s: %w", attr, err)
			}
			if seg == "" {
				seg = SegmentNone
			}
			if sd.Binary[seg] == nil {
				sd.Binary[seg] = map[string]stats.Proportion{}
			}
			sd.Binary[seg][variant] = stats.Proportion{N: int64(n), Successes: int64(conv)}
		} else {
			var mean, variance float64
			if err := rows.Scan(&seg, &variant, &n, &mean, &variance); err != nil {
				return fmt.Errorf("scanning segments by %s: %w", attr, err)
			}
			if seg == "" {
				seg = SegmentNone
			}
			if sd.Continuous[seg] == nil {
				sd.Continuous[seg] = map[string]stats.Sample{}
			}
			sd.Continuous[seg][variant] = sample(n, mean, variance)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading segments by %s: %w", attr, err)
	}
	poolSmallSegments(&sd, limit)
	if d.Segments == nil {
		d.Segments = map[string]SegmentData{}
	}
	d.Segments[attr] = sd
	return nil
}

// segmentValueLimit is how many values of each attribute are analysed one by
// one: MaxSegmentValues, fewer when the test has many segment attributes and
// treatments, so that the report (which travels as one NATS message) holds
// at most MaxSegmentComparisons segment comparisons.
func segmentValueLimit(t *experiment.Test) int {
	per := len(t.Segments) * max(1, len(t.Variants)-1)
	return min(MaxSegmentValues, max(2, MaxSegmentComparisons/max(1, per)))
}

// poolSmallSegments merges the values beyond the limit largest (SegmentNone
// always stays apart) into SegmentOther.
func poolSmallSegments(sd *SegmentData, limit int) {
	values := segmentValues(*sd, len(sd.Binary) > 0)
	kept := 0
	for _, v := range values {
		if v == SegmentNone {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		for variant, p := range sd.Binary[v] {
			if sd.Binary[SegmentOther] == nil {
				sd.Binary[SegmentOther] = map[string]stats.Proportion{}
			}
			o := sd.Binary[SegmentOther][variant]
			sd.Binary[SegmentOther][variant] = stats.Proportion{N: o.N + p.N, Successes: o.Successes + p.Successes}
		}
		for variant, s := range sd.Continuous[v] {
			if sd.Continuous[SegmentOther] == nil {
				sd.Continuous[SegmentOther] = map[string]stats.Sample{}
			}
			sd.Continuous[SegmentOther][variant] = stats.Combine(sd.Continuous[SegmentOther][variant], s)
		}
		delete(sd.Binary, v)
		delete(sd.Continuous, v)
	}
}
