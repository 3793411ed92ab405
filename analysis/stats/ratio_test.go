package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

type jsonRatioSample struct {
	N                   int64   `json:"n"`
	NumeratorMean       float64 `json:"numerator_mean"`
	NumeratorVariance   float64 `json:"numerator_variance"`
	DenominatorMean     float64 `json:"denominator_mean"`
	DenominatorVariance float64 `json:"denominator_variance"`
	Covariance          float64 `json:"covariance"`
}

func TestCompareRatiosReference(t *testing.T) {
	var ref struct {
		Ratio []struct {
			Name               string
			Level              float64
			Control, Treatment jsonRatioSample
			ControlRatio       float64 `json:"control_ratio"`
			TreatmentRatio     float64 `json:"treatment_ratio"`
			ControlVariance    float64 `json:"control_variance"`
			TreatmentVariance  float64 `json:"treatment_variance"`
			Diff, Z            float64
			StdErr             float64 `json:"std_err"`
			PValue             float64 `json:"p_value"`
			CILower            float64 `json:"ci_lower"`
			CIUpper            float64 `json:"ci_upper"`
			LiftLower          float64 `json:"lift_lower"`
			LiftUpper          float64 `json:"lift_upper"`
		}
	}
	readJSON(t, "options.json", &ref)
	if len(ref.Ratio) == 0 {
		t.Fatal("options.json has no ratio cases")
	}
	var worst worstError
	for _, tc := range ref.Ratio {
		got, err := CompareRatios(RatioSample(tc.Control), RatioSample(tc.Treatment), tc.Level)
		if err != nil {
			t.Errorf("%s: CompareRatios() error %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{
			{"Control", got.Control, tc.ControlRatio}, {"Treatment", got.Treatment, tc.TreatmentRatio},
			{"ControlVariance", got.ControlVariance, tc.ControlVariance},
			{"TreatmentVariance", got.TreatmentVariance, tc.TreatmentVariance},
			{"Diff", got.Diff, tc.Diff}, {"StdErr", got.StdErr, tc.StdErr}, {"Z", got.Z, tc.Z},
			{"PValue", got.PValue, tc.PValue}, {"CILower", got.CILower, tc.CILower}, {"CIUpper", got.CIUpper, tc.CIUpper},
			{"Lift.Lower", got.Lift.Lower, tc.LiftLower}, {"Lift.Upper", got.Lift.Upper, tc.LiftUpper},
		})
	}
	worst.log(t)
}

func TestCompareRatiosEdges(t *testing.T) {
	ok := RatioSample{N: 10, NumeratorMean: 3, NumeratorVariance: 4, DenominatorMean: 2, DenominatorVariance: 1, Covariance: 1}
	tests := []struct {
		name   string
		c, tr  RatioSample
		wantIs error
	}{
		{"one user", RatioSample{N: 1, DenominatorMean: 1}, ok, ErrInsufficientData},
		{"no denominator", ok, RatioSample{N: 10, NumeratorVariance: 1, DenominatorVariance: 1}, ErrZeroDenominator},
		{"constant ratio", RatioSample{N: 10, NumeratorMean: 2, DenominatorMean: 1},
			RatioSample{N: 10, NumeratorMean: 3, DenominatorMean: 1}, ErrZeroVariance},
		// Numerator proportional to denominator in each arm: every user has
		// the same ratio, so the delta-method variance is 0.
		{"proportional", RatioSample{N: 10, NumeratorMean: 2, NumeratorVariance: 4, DenominatorMean: 1, DenominatorVariance: 1, Covariance: 2},
			RatioSample{N: 10, NumeratorMean: 3, NumeratorVariance: 9, DenominatorMean: 1, DenominatorVariance: 1, Covariance: 3}, ErrZeroVariance},
		{"covariance too large", ok, RatioSample{N: 10, NumeratorMean: 1, NumeratorVariance: 1, DenominatorMean: 1, DenominatorVariance: 1, Covariance: 3}, nil},
		{"NaN mean", ok, RatioSample{N: 10, NumeratorMean: math.NaN(), DenominatorMean: 1}, nil},
		{"negative variance", ok, RatioSample{N: 10, NumeratorVariance: -1, DenominatorMean: 1}, nil},
	}
	for _, tt := range tests {
		got, err := CompareRatios(tt.c, tt.tr, 0.95)
		if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: CompareRatios() = %+v, %v, want error %v", tt.name, got, err, tt.wantIs)
		}
	}
	if _, err := CompareRatios(ok, ok, 1); err == nil {
		t.Error("CompareRatios(level 1): want an error")
	}
}

// TestCompareRatiosCoverage simulates revenue per session with a
// user-level correlation between sessions and revenue and checks that the
// 95% interval of the difference covers the true difference at the nominal
// rate, and that ignoring the covariance term would not: with positively
// correlated numerator and denominator its intervals are too wide.
func TestCompareRatiosCoverage(t *testing.T) {
	const (
		sims  = 2000
		n     = 400
		level = 0.95
	)
	rng := rand.New(rand.NewPCG(5, 6))
	sessions := distuv.Poisson{Lambda: 2, Src: rng}
	spend := distuv.Gamma{Alpha: 2, Beta: 2, Src: rng} // mean 1
	// Revenue per user = sessions·rps·spend: the true ratio is
	// E[sessions·rps·spend]/E[sessions] = rps.
	rpsC, rpsT := 2.0, 2.2
	covered, coveredNoCov := 0, 0
	for range sims {
		var c, tr covArm
		for range n {
			d := sessions.Rand() + 1
			c.add(d, d*rpsC*spend.Rand())
			d = sessions.Rand() + 1
			tr.add(d, d*rpsT*spend.Rand())
		}
		cs, ts := c.sample(), tr.sample()
		rc := RatioSample{cs.N, cs.Mean, cs.Variance, cs.CovariateMean, cs.CovariateVariance, cs.Covariance}
		rt := RatioSample{ts.N, ts.Mean, ts.Variance, ts.CovariateMean, ts.CovariateVariance, ts.Covariance}
		r, err := CompareRatios(rc, rt, level)
		if err != nil {
			t.Fatal(err)
		}
		if r.CILower <= rpsT-rpsC && rpsT-rpsC <= r.CIUpper {
			covered++
		}
		rc.Covariance, rt.Covariance = 0, 0
		if r0, err := CompareRatios(rc, rt, level); err == nil && r0.CILower <= rpsT-rpsC && rpsT-rpsC <= r0.CIUpper {
			coveredNoCov++
		}
	}
	cover, noCov := float64(covered)/sims, float64(coveredNoCov)/sims
	sd := math.Sqrt(level * (1 - level) / sims)
	t.Logf("ratio metric, %d experiments of %d users per arm: 95%% coverage %.4f with the covariance term, %.4f without", sims, n, cover, noCov)
	if math.Abs(cover-level) > 3*sd {
		t.Errorf("coverage %.4f, want %.2f ± %.4f", cover, level, 3*sd)
	}
	if noCov < level+3*sd {
		t.Errorf("coverage without the covariance term %.4f, want clearly above %.2f (intervals too wide)", noCov, level)
	}
}
