package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

type jsonCovariateSample struct {
	N                 int64   `json:"n"`
	Mean              float64 `json:"mean"`
	Variance          float64 `json:"variance"`
	CovariateMean     float64 `json:"covariate_mean"`
	CovariateVariance float64 `json:"covariate_variance"`
	Covariance        float64 `json:"covariance"`
}

func TestCUPEDReference(t *testing.T) {
	var ref struct {
		CUPED []struct {
			Name                      string
			Level                     float64
			Control, Treatment        jsonCovariateSample
			Theta, Diff, T            float64
			AdjustedControlMean       float64 `json:"adjusted_control_mean"`
			AdjustedTreatmentMean     float64 `json:"adjusted_treatment_mean"`
			AdjustedControlVariance   float64 `json:"adjusted_control_variance"`
			AdjustedTreatmentVariance float64 `json:"adjusted_treatment_variance"`
			PValue                    float64 `json:"p_value"`
			CILower                   float64 `json:"ci_lower"`
			CIUpper                   float64 `json:"ci_upper"`
			UnadjustedPValue          float64 `json:"unadjusted_p_value"`
			VarianceReduction         float64 `json:"variance_reduction"`
		} `json:"cuped"`
	}
	readJSON(t, "options.json", &ref)
	if len(ref.CUPED) == 0 {
		t.Fatal("options.json has no cuped cases")
	}
	var worst worstError
	for _, tc := range ref.CUPED {
		got, err := CUPEDTest(CovariateSample(tc.Control), CovariateSample(tc.Treatment), tc.Level)
		if err != nil {
			t.Errorf("%s: CUPEDTest() error %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{
			{"Theta", got.Theta, tc.Theta}, {"Welch.Diff", got.Welch.Diff, tc.Diff},
			{"Control.Mean", got.Control.Mean, tc.AdjustedControlMean},
			{"Treatment.Mean", got.Treatment.Mean, tc.AdjustedTreatmentMean},
			{"Control.Variance", got.Control.Variance, tc.AdjustedControlVariance},
			{"Treatment.Variance", got.Treatment.Variance, tc.AdjustedTreatmentVariance},
			{"Welch.T", got.Welch.T, tc.T}, {"Welch.PValue", got.Welch.PValue, tc.PValue},
			{"Welch.CILower", got.Welch.CILower, tc.CILower}, {"Welch.CIUpper", got.Welch.CIUpper, tc.CIUpper},
			{"Unadjusted.PValue", got.Unadjusted.PValue, tc.UnadjustedPValue},
			{"VarianceReduction", got.VarianceReduction, tc.VarianceReduction},
		})
	}
	worst.log(t)
}

func TestCUPEDEdges(t *testing.T) {
	ok := CovariateSample{N: 10, Mean: 1, Variance: 1, CovariateMean: 2, CovariateVariance: 4, Covariance: 1}
	noX := CovariateSample{N: 10, Mean: 1.5, Variance: 1, CovariateMean: 2}
	tests := []struct {
		name      string
		c, tr     CovariateSample
		wantIs    error
		wantError bool
	}{
		{"one user", CovariateSample{N: 1, Mean: 1}, ok, ErrInsufficientData, true},
		{"zero variance", CovariateSample{N: 5, Mean: 1}, CovariateSample{N: 5, Mean: 1}, ErrZeroVariance, true},
		{"covariance too large", ok, CovariateSample{N: 10, Mean: 1, Variance: 1, CovariateVariance: 1, Covariance: 2}, nil, true},
		{"negative covariate variance", ok, CovariateSample{N: 10, Mean: 1, Variance: 1, CovariateVariance: -1}, nil, true},
		{"NaN covariance", ok, CovariateSample{N: 10, Mean: 1, Variance: 1, CovariateVariance: 1, Covariance: math.NaN()}, nil, true},
		{"level 0", ok, ok, nil, true},
		{"constant covariate: unadjusted", noX, noX, nil, false},
		{"Y equals X in both arms: perfectly explained", CovariateSample{N: 10, Mean: 1, Variance: 4, CovariateMean: 1, CovariateVariance: 4, Covariance: 4},
			CovariateSample{N: 10, Mean: 2, Variance: 4, CovariateMean: 2, CovariateVariance: 4, Covariance: 4}, ErrZeroVariance, true},
	}
	for _, tt := range tests {
		level := 0.95
		if tt.name == "level 0" {
			level = 0
		}
		got, err := CUPEDTest(tt.c, tt.tr, level)
		if (err != nil) != tt.wantError || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: CUPEDTest() = %+v, %v, want error %v (%v)", tt.name, got, err, tt.wantError, tt.wantIs)
		}
		if err == nil && (got.Theta != 0 || got.Welch != got.Unadjusted || got.VarianceReduction != 0) {
			t.Errorf("%s: CUPEDTest() = %+v, want the unadjusted test", tt.name, got)
		}
	}
}

// covArm accumulates the CUPED sufficient statistics of one arm user by
// user with Welford's updates.
type covArm struct {
	n                     int64
	my, mx, syy, sxx, sxy float64
}

func (a *covArm) add(x, y float64) {
	a.n++
	n := float64(a.n)
	dx, dy := x-a.mx, y-a.my
	a.mx += dx / n
	a.my += dy / n
	a.sxx += dx * (x - a.mx)
	a.syy += dy * (y - a.my)
	a.sxy += dx * (y - a.my)
}

func (a covArm) sample() CovariateSample {
	d := float64(a.n - 1)
	return CovariateSample{N: a.n, Mean: a.my, Variance: a.syy / d, CovariateMean: a.mx, CovariateVariance: a.sxx / d, Covariance: a.sxy / d}
}

// TestCUPEDSimulation checks, over many simulated experiments with a
// covariate of correlation rho, that the adjusted estimate is unbiased, that
// its variance is about (1-rho²) times the unadjusted one, and that the 95%
// interval covers the true effect at the nominal rate.
func TestCUPEDSimulation(t *testing.T) {
	const (
		sims   = 2000
		n      = 300
		effect = 0.2
		level  = 0.95
	)
	for _, rho := range []float64{0.5, 0.8} {
		rng := rand.New(rand.NewPCG(11, uint64(rho*10)))
		var sumAdj, sumAdj2, sumUn, sumUn2, sumVR float64
		covered := 0
		for range sims {
			var c, tr covArm
			for i := range 2 * n {
				x := rng.NormFloat64()
				y := 2 + rho*x + math.Sqrt(1-rho*rho)*rng.NormFloat64()
				if i%2 == 0 {
					c.add(x, y)
				} else {
					tr.add(x, y+effect)
				}
			}
			r, err := CUPEDTest(c.sample(), tr.sample(), level)
			if err != nil {
				t.Fatal(err)
			}
			d, u := r.Welch.Diff, r.Unadjusted.Diff
			sumAdj += d
			sumAdj2 += d * d
			sumUn += u
			sumUn2 += u * u
			sumVR += r.VarianceReduction
			if r.Welch.CILower <= effect && effect <= r.Welch.CIUpper {
				covered++
			}
		}
		meanAdj := sumAdj / sims
		varAdj := (sumAdj2 - sims*meanAdj*meanAdj) / (sims - 1)
		meanUn := sumUn / sims
		varUn := (sumUn2 - sims*meanUn*meanUn) / (sims - 1)
		ratio := varAdj / varUn
		cover := float64(covered) / sims
		coverSD := math.Sqrt(level * (1 - level) / sims)
		t.Logf("rho %.1f, %d experiments of %d users per arm: Var(adjusted)/Var(unadjusted) %.4f (1-rho² = %.4f), mean reported variance reduction %.4f, bias %.5f (sd %.5f), 95%% coverage %.4f",
			rho, sims, n, ratio, 1-rho*rho, sumVR/sims, meanAdj-effect, math.Sqrt(varAdj/sims), cover)
		// The ratio of two correlated variance estimates from 2000 runs:
		// about ±0.04 at 3 sd.
		if math.Abs(ratio-(1-rho*rho)) > 0.05 {
			t.Errorf("rho %v: variance ratio %.4f, want %.4f ± 0.05", rho, ratio, 1-rho*rho)
		}
		if math.Abs(sumVR/sims-rho*rho) > 0.02 {
			t.Errorf("rho %v: mean variance reduction %.4f, want %.4f ± 0.02", rho, sumVR/sims, rho*rho)
		}
		if math.Abs(meanAdj-effect) > 4*math.Sqrt(varAdj/sims) {
			t.Errorf("rho %v: mean adjusted estimate %.5f, want %v ± 4 sd", rho, meanAdj, effect)
		}
		if math.Abs(cover-level) > 3*coverSD {
			t.Errorf("rho %v: coverage %.4f, want %.2f ± %.4f", rho, cover, level, 3*coverSD)
		}
	}
}
