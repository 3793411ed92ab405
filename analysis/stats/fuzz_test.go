package stats

import (
	"math"
	"testing"
)

// FuzzTwoArmInvariants feeds arbitrary arms to the sequential, Bayesian,
// CUPED, ratio and non-inferiority functions and checks that each either
// returns an error or a result without NaN that keeps its invariants.
func FuzzTwoArmInvariants(f *testing.F) {
	f.Add(int64(500), 10.0, 9.0, int64(520), 10.6, 10.24, 0.5)
	f.Add(int64(2), 0.0, 0.0, int64(2), 1.0, 1e-300, -0.9)
	f.Add(int64(1e9), 1e-8, 1e-12, int64(3), -1e8, 1e10, 0.0)
	f.Fuzz(func(t *testing.T, nc int64, mc, vc float64, nt int64, mt, vt, rho float64) {
		c, tr := Sample{N: nc, Mean: mc, Variance: vc}, Sample{N: nt, Mean: mt, Variance: vt}
		if s, err := SequentialMeans(c, tr, SequentialConfig{}); err == nil {
			if math.IsNaN(s.Lower) || math.IsNaN(s.Upper) || !(s.PValue >= 0 && s.PValue <= 1) || s.Lower > s.Diff || s.Upper < s.Diff {
				t.Errorf("SequentialMeans(%+v, %+v) = %+v", c, tr, s)
			}
			if excl := s.Lower > 0 || s.Upper < 0; excl != s.Significant && math.Abs(s.PValue-0.05) > 1e-9 {
				t.Errorf("SequentialMeans(%+v, %+v) = %+v: sequence and p-value disagree", c, tr, s)
			}
		}
		for _, rel := range []bool{false, true} {
			b, err := BayesMeans(c, tr, BayesConfig{Relative: rel})
			if err != nil {
				continue
			}
			if !(b.ChanceToWin >= 0 && b.ChanceToWin <= 1) || !(b.RiskTreatment >= 0) || !(b.RiskControl >= 0) || math.IsNaN(b.Mean) {
				t.Errorf("BayesMeans(%+v, %+v, relative %v) = %+v", c, tr, rel, b)
			}
		}
		if !(math.Abs(rho) <= 1) {
			return
		}
		// A covariate with correlation rho and the metric's variances.
		cc := CovariateSample{N: nc, Mean: mc, Variance: vc, CovariateMean: mc, CovariateVariance: vc, Covariance: rho * vc}
		ct := CovariateSample{N: nt, Mean: mt, Variance: vt, CovariateMean: mc, CovariateVariance: vt, Covariance: rho * vt}
		if r, err := CUPEDTest(cc, ct, 0.95); err == nil && (math.IsNaN(r.Welch.PValue) || math.IsNaN(r.VarianceReduction) || r.VarianceReduction > 1) {
			t.Errorf("CUPEDTest(%+v, %+v) = %+v", cc, ct, r)
		}
		rc := RatioSample{N: nc, NumeratorMean: mc, NumeratorVariance: vc, DenominatorMean: 1 + math.Abs(mt), DenominatorVariance: vt, Covariance: rho * math.Sqrt(vc*vt)}
		if r, err := CompareRatios(rc, rc, 0.95); err == nil && (r.Diff != 0 || r.PValue != 1 || math.IsNaN(r.CILower)) {
			t.Errorf("CompareRatios(%+v, same) = %+v", rc, r)
		}
		if r, err := NonInferiorityMeans(c, tr, NonInferiorityConfig{Margin: 0.1, Relative: true}); err == nil &&
			(!(r.PValue >= 0 && r.PValue <= 1) || math.IsNaN(r.Bound) || r.NotWorse != (r.Bound > -r.Margin) && math.Abs(r.PValue-0.05) > 1e-9) {
			t.Errorf("NonInferiorityMeans(%+v, %+v) = %+v", c, tr, r)
		}
	})
}
