package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Ratio metrics (a numerator per user over a denominator per user, say
// revenue per session): the per-variant moments of the users' sums from
// ClickHouse, and the delta-method z-test of stats.CompareRatios in the
// report.

// TestRatio is the test of ratio metrics: a z-test of the difference of the
// ratios with delta-method variances (numerator-denominator covariance
// included).
const TestRatio = "delta_method_z_test"

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

// ratioArm returns a ratio metric's arm.
func ratioArm(r stats.RatioSample) arm {
	a := arm{sample: stats.Sample{N: r.N}}
	if r.N == 0 {
		return a
	}
	a.ratio = &r
	if r.DenominatorMean != 0 {
		a.sample.Mean = r.Ratio()
		if r.N > 1 {
			a.sample.Variance = r.RatioVariance() * float64(r.N)
		}
	}
	return a
}

func ratioVariantStats(t *experiment.Test, v experiment.Variant, a arm) experiment.VariantStats {
	vs := experiment.VariantStats{VariantID: v.ID, VariantName: v.Name, SampleSize: a.sample.N}
	r := a.ratio
	if r == nil {
		return vs
	}
	vs.Ratio = &experiment.RatioStats{
		NumeratorMean: r.NumeratorMean, DenominatorMean: r.DenominatorMean,
		NumeratorVariance: r.NumeratorVariance, DenominatorVariance: r.DenominatorVariance, Covariance: r.Covariance,
	}
	if r.DenominatorMean == 0 {
		return vs
	}
	vs.MeanValue = ptr(r.Ratio())
	if r.N > 1 {
		rv := r.RatioVariance()
		vs.Ratio.RatioVariance = ptr(rv)
		vs.StdDev = ptr(math.Sqrt(a.sample.Variance))
		h := stats.NormalCritical(1-t.ConfidenceLevel) * math.Sqrt(rv)
		vs.ConfidenceIntervalLower, vs.ConfidenceIntervalUpper = ptr(r.Ratio()-h), ptr(r.Ratio()+h)
	}
	return vs
}

// compareRatio tests a ratio metric (CompareRatios).
func compareRatio(t *experiment.Test, spec experiment.Metric, control, treatment arm, variantID string) experiment.Comparison {
	c := experiment.Comparison{VariantID: variantID, ControlVariantID: t.ControlVariantID, RelativeCIMethod: RelativeCIMethod}
	for _, n := range []int64{control.sample.N, treatment.sample.N} {
		c.UsersStillNeeded += max(0, t.MinSampleSize-n)
	}
	if control.ratio == nil || treatment.ratio == nil {
		c.Note = "each variant needs at least 2 users for a test"
		return c
	}
	cr, tr := *control.ratio, *treatment.ratio
	if cr.DenominatorMean != 0 && tr.DenominatorMean != 0 {
		mc, mt := cr.Ratio(), tr.Ratio()
		c.AbsoluteDifference = ptr(mt - mc)
		if mc != 0 {
			c.RelativeDifference = ptr((mt - mc) / math.Abs(mc))
		}
		c.Better = ptr(mt > mc)
		if spec.Direction == experiment.DirectionDecrease {
			c.Better = ptr(mt < mc)
		}
	}
	r, err := stats.CompareRatios(cr, tr, t.ConfidenceLevel)
	switch {
	case errors.Is(err, stats.ErrInsufficientData):
		c.Note = "each variant needs at least 2 users for a test"
		return c
	case errors.Is(err, stats.ErrZeroDenominator):
		c.Note = fmt.Sprintf("a variant's mean %s is 0: the ratio is undefined", spec.Denominator)
		return c
	case errors.Is(err, stats.ErrZeroVariance):
		c.Note = "both variants have zero variance: no test is possible"
		return c
	case err != nil:
		c.Note = err.Error()
		return c
	}
	c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper = ptr(r.CILower), ptr(r.CIUpper)
	c.ZStatistic, c.PValue = ptr(r.Z), ptr(r.PValue)
	c.Significant = r.PValue < 1-t.ConfidenceLevel
	c.MinimumDetectableEffect = ptr(stats.CurrentMDE(r.StdErr, 1-t.ConfidenceLevel, mdePower))
	if r.Lift.Bounded {
		c.RelativeCILower, c.RelativeCIUpper = ptr(r.Lift.Lower), ptr(r.Lift.Upper)
	}
	return c
}
