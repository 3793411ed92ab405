package analysis

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// CUPED on continuous metrics: the moments of each user's value and
// covariate per variant from ClickHouse (recorded covariates, or the same
// metric in other tests during the lookback window), and the adjusted arms
// the comparison then uses. The queries count each event_id once:
// result_covariates may hold an event twice (see migration 0004).

// CUPED covariate sources.
const (
	CUPEDFromCovariates = "covariates"
	CUPEDFromLookback   = "lookback"
)

// CUPEDData is one metric's covariate moments per variant.
type CUPEDData struct {
	Source   string // CUPEDFromCovariates or CUPEDFromLookback
	Lookback string // the test's lookback, for CUPEDFromLookback
	Arms     map[string]stats.CovariateSample
	// WithCovariate counts per variant the users who have a covariate
	// (the others count with covariate 0).
	WithCovariate map[string]int64
}

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

// cupedArms returns the CUPED-adjusted arms of a comparison and the
// report of the adjustment; the arms are unchanged when it is impossible.
func cupedArms(t *experiment.Test, cd CUPEDData, control, treatment arm, variantID string) (arm, arm, *experiment.CUPEDResult) {
	res := &experiment.CUPEDResult{Source: cd.Source, UsersWithCovariate: cd.WithCovariate[t.ControlVariantID] + cd.WithCovariate[variantID]}
	if cd.Source == CUPEDFromLookback {
		res.Lookback = cd.Lookback
	}
	cc, okc := cd.Arms[t.ControlVariantID]
	ct, okt := cd.Arms[variantID]
	if !okc || !okt {
		res.Note = "no adjustment: a variant has no users with results"
		return control, treatment, res
	}
	r, err := stats.CUPEDTest(cc, ct, t.ConfidenceLevel)
	if err != nil {
		res.Note = "no adjustment: " + err.Error()
		return control, treatment, res
	}
	res.Theta, res.VarianceReduction = r.Theta, r.VarianceReduction
	res.UnadjustedDifference = ptr(r.Unadjusted.Diff)
	res.UnadjustedCILower, res.UnadjustedCIUpper = ptr(r.Unadjusted.CILower), ptr(r.Unadjusted.CIUpper)
	res.UnadjustedPValue = ptr(r.Unadjusted.PValue)
	res.AdjustedControlMean, res.AdjustedTreatmentMean = ptr(r.Control.Mean), ptr(r.Treatment.Mean)
	return arm{sample: r.Control}, arm{sample: r.Treatment}, res
}
