package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestNonInferiorityReference(t *testing.T) {
	var ref struct {
		NonInferiority []struct {
			Name               string
			Kind               string
			Control, Treatment jsonArm
			Margin             float64
			Relative           bool
			Direction          string
			Alpha              float64
			Diff, DoF          float64
			StdErr             float64 `json:"std_err"`
			AbsMargin          float64 `json:"abs_margin"`
			Statistic          float64
			PValue             float64 `json:"p_value"`
			Bound              float64
			NotWorse           bool `json:"not_worse"`
		} `json:"noninferiority"`
	}
	readJSON(t, "options.json", &ref)
	if len(ref.NonInferiority) == 0 {
		t.Fatal("options.json has no noninferiority cases")
	}
	var worst worstError
	for _, tc := range ref.NonInferiority {
		cfg := NonInferiorityConfig{Margin: tc.Margin, Relative: tc.Relative, Alpha: tc.Alpha}
		if tc.Direction == "lower" {
			cfg.Direction = LowerIsBetter
		}
		var got NonInferiority
		var err error
		if tc.Kind == "prop" {
			got, err = NonInferiorityProportions(Proportion{tc.Control.N, tc.Control.Successes},
				Proportion{tc.Treatment.N, tc.Treatment.Successes}, cfg)
		} else {
			got, err = NonInferiorityMeans(Sample{tc.Control.N, tc.Control.Mean, tc.Control.Variance},
				Sample{tc.Treatment.N, tc.Treatment.Mean, tc.Treatment.Variance}, cfg)
		}
		if err != nil {
			t.Errorf("%s: error %v", tc.Name, err)
			continue
		}
		cs := []check{
			{"Diff", got.Diff, tc.Diff}, {"StdErr", got.StdErr, tc.StdErr}, {"Margin", got.Margin, tc.AbsMargin},
			{"Statistic", got.Statistic, tc.Statistic}, {"PValue", got.PValue, tc.PValue}, {"Bound", got.Bound, tc.Bound},
		}
		if tc.Kind != "prop" {
			cs = append(cs, check{"DoF", got.DoF, tc.DoF})
		}
		checkAll(t, &worst, tc.Name, cs)
		if got.NotWorse != tc.NotWorse {
			t.Errorf("%s: NotWorse = %v, want %v", tc.Name, got.NotWorse, tc.NotWorse)
		}
		// The bound is within the margin exactly when the test passes.
		within := got.Bound > -got.Margin
		if cfg.Direction == LowerIsBetter {
			within = got.Bound < got.Margin
		}
		if within != got.NotWorse {
			t.Errorf("%s: bound %v against margin %v disagrees with NotWorse %v", tc.Name, got.Bound, got.Margin, got.NotWorse)
		}
	}
	worst.log(t)
}

func TestNonInferiorityEdges(t *testing.T) {
	ok := Sample{N: 10, Mean: 1, Variance: 1}
	tests := []struct {
		name   string
		c, tr  Sample
		cfg    NonInferiorityConfig
		wantIs error
	}{
		{"one user", Sample{N: 1, Mean: 1}, ok, NonInferiorityConfig{Margin: 1}, ErrInsufficientData},
		{"zero variance", Sample{N: 10, Mean: 1}, Sample{N: 10, Mean: 1}, NonInferiorityConfig{Margin: 1}, ErrZeroVariance},
		{"relative, control mean 0", Sample{N: 10, Variance: 1}, ok, NonInferiorityConfig{Margin: 0.1, Relative: true}, ErrZeroControlMean},
		{"no margin", ok, ok, NonInferiorityConfig{}, nil},
		{"negative margin", ok, ok, NonInferiorityConfig{Margin: -1}, nil},
		{"alpha 0.5", ok, ok, NonInferiorityConfig{Margin: 1, Alpha: 0.5}, nil},
		{"bad direction", ok, ok, NonInferiorityConfig{Margin: 1, Direction: -1}, nil},
	}
	for _, tt := range tests {
		got, err := NonInferiorityMeans(tt.c, tt.tr, tt.cfg)
		if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: NonInferiorityMeans() = %+v, %v, want error %v", tt.name, got, err, tt.wantIs)
		}
	}
	if _, err := NonInferiorityProportions(Proportion{N: 5}, Proportion{N: 5}, NonInferiorityConfig{Margin: 0.1}); !errors.Is(err, ErrZeroVariance) {
		t.Errorf("NonInferiorityProportions(all zero) error %v, want ErrZeroVariance", err)
	}
	// Direction matters: a 10% increase passes for higher-is-better and
	// fails for lower-is-better at a 1% margin.
	c, tr := Sample{N: 1000, Mean: 10, Variance: 1}, Sample{N: 1000, Mean: 11, Variance: 1}
	hi, err1 := NonInferiorityMeans(c, tr, NonInferiorityConfig{Margin: 0.01, Relative: true})
	lo, err2 := NonInferiorityMeans(c, tr, NonInferiorityConfig{Margin: 0.01, Relative: true, Direction: LowerIsBetter})
	if err := errors.Join(err1, err2); err != nil || !hi.NotWorse || lo.NotWorse || math.IsNaN(lo.PValue) {
		t.Errorf("10%% increase: higher-is-better %+v, lower-is-better %+v (%v): want pass, fail", hi, lo, err)
	}
}

// TestNonInferiorityTypeI simulates experiments whose treatment is worse by
// exactly the margin (the boundary of the null hypothesis): the test must
// declare "not worse" in about alpha of them, for both directions. It also
// reports the power when the arms are equal.
func TestNonInferiorityTypeI(t *testing.T) {
	const (
		sims   = 4000
		n      = 200
		margin = 0.1
		alpha  = 0.05
	)
	rng := rand.New(rand.NewPCG(21, 22))
	draw := func(mean float64) Sample {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = mean + rng.ExpFloat64() - 1 // skewed, sd 1
		}
		return sampleOf(xs)
	}
	sd := math.Sqrt(alpha * (1 - alpha) / sims)
	for _, dir := range []Direction{HigherIsBetter, LowerIsBetter} {
		cfg := NonInferiorityConfig{Margin: margin, Direction: dir, Alpha: alpha}
		var atMargin, equal int
		for range sims {
			c := draw(0)
			r, err := NonInferiorityMeans(c, draw(-dir.sign()*margin), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.NotWorse {
				atMargin++
			}
			if r, err = NonInferiorityMeans(c, draw(0), cfg); err != nil {
				t.Fatal(err)
			}
			if r.NotWorse {
				equal++
			}
		}
		typeI, power := float64(atMargin)/sims, float64(equal)/sims
		t.Logf("%s, margin %.1f sd, %d users per arm: \"not worse\" when worse by the margin %.4f (alpha %.2f), when equal %.4f",
			dir, margin, n, typeI, alpha, power)
		if math.Abs(typeI-alpha) > 3*sd+0.005 { // t approximation on skewed data
			t.Errorf("%s: type-I error %.4f, want %.2f ± %.4f", dir, typeI, alpha, 3*sd+0.005)
		}
	}
}
