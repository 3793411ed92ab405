package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// SegmentEffect is the effect of treatment (treatment minus control, any
// scale) measured within one segment of users, such as a country or a
// platform, with its standard error. Segments must be disjoint, so that
// their estimates are independent.
type SegmentEffect struct {
	Name   string
	Effect float64
	StdErr float64
}

// SegmentDeviation compares one segment's effect with the rest.
type SegmentDeviation struct {
	Name           string
	Effect, StdErr float64
	// Rest is the inverse-variance pooled effect of all other segments and
	// RestStdErr its standard error.
	Rest, RestStdErr float64
	// Diff is Effect - Rest, with standard error
	// sqrt(StdErr² + RestStdErr²), z statistic Z and two-sided PValue.
	Diff, DiffStdErr, Z, PValue float64
	// AdjustedPValue is PValue corrected over the segments.
	AdjustedPValue float64
	// Flagged reports AdjustedPValue <= alpha: the segment's effect
	// differs from the rest's.
	Flagged bool
}

// SegmentScan is a scan for heterogeneous treatment effects across
// segments.
type SegmentScan struct {
	// Pooled is the fixed-effect (inverse-variance) pooled effect over all
	// segments and PooledStdErr its standard error.
	Pooled, PooledStdErr float64
	// Q is Cochran's Q = Σ (e_i - Pooled)²/se_i², chi-square with DoF =
	// k-1 degrees of freedom when all segments share one effect; QPValue
	// is its upper tail. I2 = max(0, (Q - DoF)/Q) is the share of the
	// variation across segments beyond chance.
	Q, DoF, QPValue, I2 float64
	// Segments compares each segment with the rest, in input order.
	Segments []SegmentDeviation
}

// ScanSegments looks for segments whose treatment effect differs from the
// others'. It reports Cochran's Q test of homogeneity over all segments
// and, for each segment, a z-test of its effect against the pooled effect
// of the other segments, with p-values adjusted over the k segments by
// correction (CorrectionHolm or CorrectionBenjaminiHochberg; "" means
// CorrectionHolm). A segment is flagged when its adjusted p-value is at
// most alpha.
//
// Pooling is inverse-variance weighted (fixed effect), as in
// statsmodels' combine_effects; "the rest" is therefore the best estimate
// of a common effect from the other segments, not the effect measured on
// their users taken together. A flag is a lead for follow-up, not a
// finding: segments found this way after the fact deserve their own test.
//
// It needs at least two segments with positive, finite standard errors and
// finite effects; alpha must be in (0, 1).
func ScanSegments(segments []SegmentEffect, alpha float64, correction string) (SegmentScan, error) {
	if !(alpha > 0 && alpha < 1) {
		return SegmentScan{}, fmt.Errorf("alpha %v is outside (0, 1)", alpha)
	}
	if correction == "" {
		correction = CorrectionHolm
	}
	k := len(segments)
	if k < 2 {
		return SegmentScan{}, fmt.Errorf("%d segments: %w", k, ErrInsufficientData)
	}
	w := make([]float64, k)
	var sw, swe float64
	for i, s := range segments {
		if !finite(s.Effect) || !(s.StdErr > 0) || math.IsInf(s.StdErr, 1) {
			return SegmentScan{}, fmt.Errorf("segment %q: effect %v with standard error %v is not usable", s.Name, s.Effect, s.StdErr)
		}
		w[i] = 1 / (s.StdErr * s.StdErr)
		if math.IsInf(w[i], 1) {
			return SegmentScan{}, fmt.Errorf("segment %q: standard error %v is too small", s.Name, s.StdErr)
		}
		sw += w[i]
		swe += w[i] * s.Effect
	}
	r := SegmentScan{Pooled: swe / sw, PooledStdErr: math.Sqrt(1 / sw), DoF: float64(k - 1)}
	for i, s := range segments {
		d := s.Effect - r.Pooled
		r.Q += w[i] * d * d
	}
	r.QPValue = distuv.ChiSquared{K: r.DoF}.Survival(r.Q)
	if r.Q > r.DoF {
		r.I2 = (r.Q - r.DoF) / r.Q
	}
	ps := make([]float64, k)
	r.Segments = make([]SegmentDeviation, k)
	for i, s := range segments {
		// Leave-one-out sums, recomputed rather than subtracted so that a
		// dominant segment cannot cancel the others away.
		var rw, rwe float64
		for j, o := range segments {
			if j != i {
				rw += w[j]
				rwe += w[j] * o.Effect
			}
		}
		dv := SegmentDeviation{Name: s.Name, Effect: s.Effect, StdErr: s.StdErr, Rest: rwe / rw, RestStdErr: math.Sqrt(1 / rw)}
		dv.Diff = s.Effect - dv.Rest
		dv.DiffStdErr = math.Hypot(s.StdErr, dv.RestStdErr)
		dv.Z = dv.Diff / dv.DiffStdErr
		dv.PValue = NormalTwoTail(dv.Z)
		ps[i] = dv.PValue
		r.Segments[i] = dv
	}
	adj, err := AdjustPValues(ps, correction)
	if err != nil {
		return SegmentScan{}, err
	}
	for i := range r.Segments {
		r.Segments[i].AdjustedPValue = adj[i]
		r.Segments[i].Flagged = adj[i] <= alpha
	}
	return r, nil
}
