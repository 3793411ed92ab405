package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestBayesReference(t *testing.T) {
	var ref struct {
		Bayes []struct {
			Name               string
			Kind               string
			Control, Treatment jsonArm
			Relative           bool
			Direction          string
			Prior              *NormalPrior
			Level              float64
			RiskThreshold      float64 `json:"risk_threshold"`
			Mean               float64
			StdDev             float64 `json:"std_dev"`
			CILower            float64 `json:"ci_lower"`
			CIUpper            float64 `json:"ci_upper"`
			ChanceToWin        float64 `json:"chance_to_win"`
			RiskTreatment      float64 `json:"risk_treatment"`
			RiskControl        float64 `json:"risk_control"`
			Decision           Decision
		}
	}
	readJSON(t, "options.json", &ref)
	if len(ref.Bayes) == 0 {
		t.Fatal("options.json has no bayes cases")
	}
	var worst worstError
	for _, tc := range ref.Bayes {
		cfg := BayesConfig{Relative: tc.Relative, Prior: tc.Prior, Level: tc.Level, RiskThreshold: tc.RiskThreshold}
		if tc.Direction == "lower" {
			cfg.Direction = LowerIsBetter
		}
		var got Bayes
		var err error
		if tc.Kind == "prop" {
			got, err = BayesProportions(Proportion{tc.Control.N, tc.Control.Successes},
				Proportion{tc.Treatment.N, tc.Treatment.Successes}, cfg)
		} else {
			got, err = BayesMeans(Sample{tc.Control.N, tc.Control.Mean, tc.Control.Variance},
				Sample{tc.Treatment.N, tc.Treatment.Mean, tc.Treatment.Variance}, cfg)
		}
		if err != nil {
			t.Errorf("%s: error %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{
			{"Mean", got.Mean, tc.Mean}, {"StdDev", got.StdDev, tc.StdDev},
			{"CILower", got.CILower, tc.CILower}, {"CIUpper", got.CIUpper, tc.CIUpper},
			{"ChanceToWin", got.ChanceToWin, tc.ChanceToWin},
			{"RiskTreatment", got.RiskTreatment, tc.RiskTreatment}, {"RiskControl", got.RiskControl, tc.RiskControl},
		})
		if got.Decision != tc.Decision {
			t.Errorf("%s: Decision = %q, want %q", tc.Name, got.Decision, tc.Decision)
		}
	}
	worst.log(t)
}

// TestBayesStatsMDExample is STATS.md's example: 100/1000 against 130/1000
// under the flat prior has a chance to win of 0.982 on the absolute
// difference and 0.967 on the relative lift (gbstats' delta method).
func TestBayesStatsMDExample(t *testing.T) {
	c, tr := Proportion{N: 1000, Successes: 100}, Proportion{N: 1000, Successes: 130}
	for _, tt := range []struct {
		relative bool
		want     float64
	}{{false, 0.982}, {true, 0.967}} {
		got, err := BayesProportions(c, tr, BayesConfig{Relative: tt.relative})
		if err != nil {
			t.Fatal(err)
		}
		if math.Round(got.ChanceToWin*1000)/1000 != tt.want {
			t.Errorf("relative %v: ChanceToWin = %.4f, want %.3f", tt.relative, got.ChanceToWin, tt.want)
		}
	}
}

// TestNormalLoss checks normalLoss against mpmath (40 digits) on both
// sides of its branch point, and its symmetry L(-x) - L(x) = x.
func TestNormalLoss(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{
		{2.9999999999, 0.00038215431718271341}, {3, 0.0003821543170477236}, {5, 5.346165533832815e-08},
		{8, 7.5502624119464989e-17}, {12, 1.4605201169845548e-34}, {20, 1.3700124947295799e-90},
		{37, 1.5451991905122025e-301},
	} {
		if got := normalLoss(tc.x); math.Abs(got-tc.want) > 1e-14*tc.want {
			t.Errorf("normalLoss(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	for _, x := range []float64{-40, -3, 0, 3, 7.99, 8, 20, 38, 40} {
		got := normalLoss(x)
		if math.IsNaN(got) || got < 0 || got < -x {
			t.Errorf("normalLoss(%v) = %v, want >= max(0, -x)", x, got)
		}
		if d := normalLoss(-x) - got; math.Abs(d-x) > 1e-12*math.Max(1, math.Abs(x)) {
			t.Errorf("normalLoss(-%v) - normalLoss(%v) = %v, want %v", x, x, d, x)
		}
	}
}

func TestBayesEdges(t *testing.T) {
	ok := Sample{N: 10, Mean: 1, Variance: 1}
	tests := []struct {
		name   string
		c, tr  Sample
		cfg    BayesConfig
		wantIs error
	}{
		{"one user", Sample{N: 1, Mean: 1}, ok, BayesConfig{}, ErrInsufficientData},
		{"zero variance", Sample{N: 10, Mean: 1}, Sample{N: 10, Mean: 2}, BayesConfig{}, ErrZeroVariance},
		{"relative, control mean 0", Sample{N: 10, Variance: 1}, ok, BayesConfig{Relative: true}, ErrZeroControlMean},
		{"improper prior", ok, ok, BayesConfig{Prior: &NormalPrior{Variance: 0}}, nil},
		{"bad direction", ok, ok, BayesConfig{Direction: 7}, nil},
		{"bad level", ok, ok, BayesConfig{Level: 1.5}, nil},
		{"negative threshold", ok, ok, BayesConfig{RiskThreshold: -1}, nil},
	}
	for _, tt := range tests {
		got, err := BayesMeans(tt.c, tt.tr, tt.cfg)
		if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: BayesMeans() = %+v, %v, want error %v", tt.name, got, err, tt.wantIs)
		}
	}
	// Absolute analysis against a control mean of 0: no decision, no NaN.
	got0, err := BayesMeans(Sample{N: 1000, Variance: 1}, Sample{N: 1000, Mean: 1, Variance: 1}, BayesConfig{})
	if err != nil || got0.Threshold != 0 || got0.Decision != DecisionKeepRunning || math.IsNaN(got0.RiskTreatment) {
		t.Errorf("BayesMeans(control mean 0) = %+v, %v, want threshold 0, keep running", got0, err)
	}
	// A far-out effect: no NaN, risk of treatment 0 or tiny, chance 1.
	got, err := BayesMeans(Sample{N: 1e6, Mean: 1, Variance: 1e-6}, Sample{N: 1e6, Mean: 2, Variance: 1e-6}, BayesConfig{})
	if err != nil || got.ChanceToWin != 1 || got.RiskTreatment != 0 || got.RiskControl != 1 || got.Decision != DecisionShipTreatment {
		t.Errorf("BayesMeans(huge effect) = %+v, %v, want chance 1, risks 0 and 1, ship", got, err)
	}
}

// TestBayesCalibration draws true effects from a normal prior, simulates
// experiments and analyses them under that prior: the credible intervals
// must cover the true effect at their level, and the chance to win must be
// calibrated (the share of true wins among experiments matches the mean
// chance to win, overall and among confident calls).
func TestBayesCalibration(t *testing.T) {
	const (
		sims  = 4000
		n     = 5000
		level = 0.95
	)
	prior := NormalPrior{Mean: 0, Variance: 0.05 * 0.05}
	rng := rand.New(rand.NewPCG(31, 32))
	chi := distuv.ChiSquared{K: n - 1, Src: rng}
	draw := func(mu float64) Sample {
		return Sample{N: n, Mean: mu + rng.NormFloat64()/math.Sqrt(n), Variance: chi.Rand() / (n - 1)}
	}
	var covered, wins, confident, confidentWins int
	var chance float64
	for range sims {
		delta := math.Sqrt(prior.Variance) * rng.NormFloat64()
		b, err := BayesMeans(draw(1), draw(1+delta), BayesConfig{Prior: &prior, Level: level})
		if err != nil {
			t.Fatal(err)
		}
		if b.CILower <= delta && delta <= b.CIUpper {
			covered++
		}
		chance += b.ChanceToWin
		if delta > 0 {
			wins++
		}
		if b.ChanceToWin >= 0.95 {
			confident++
			if delta > 0 {
				confidentWins++
			}
		}
	}
	cover := float64(covered) / sims
	sd := math.Sqrt(level * (1 - level) / sims)
	winRate, meanChance := float64(wins)/sims, chance/sims
	confRate := float64(confidentWins) / float64(confident)
	t.Logf("effects from N(0, 0.05²), %d experiments of %d users per arm: credible-interval coverage %.4f; true wins %.4f vs mean chance to win %.4f; among %d calls with chance >= 0.95, true wins %.4f",
		sims, n, cover, winRate, meanChance, confident, confRate)
	if math.Abs(cover-level) > 3*sd {
		t.Errorf("coverage %.4f, want %.2f ± %.4f", cover, level, 3*sd)
	}
	if math.Abs(winRate-meanChance) > 3*0.5/math.Sqrt(sims) {
		t.Errorf("true win rate %.4f, mean chance to win %.4f: not calibrated", winRate, meanChance)
	}
	if confRate < 0.95-3*math.Sqrt(0.05*0.95/float64(confident)) {
		t.Errorf("confident calls right in %.4f, want >= 0.95 within tolerance", confRate)
	}
}
