package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// jsonArm decodes either arm form of options.json: counts or moments.
type jsonArm struct {
	N         int64   `json:"n"`
	Successes int64   `json:"successes"`
	Mean      float64 `json:"mean"`
	Variance  float64 `json:"variance"`
}

func TestSequentialReference(t *testing.T) {
	var ref struct {
		Sequential []struct {
			Name               string
			Kind               string
			Control, Treatment jsonArm
			Alpha              float64
			TuningN            float64 `json:"tuning_n"`
			MixingVariance     float64 `json:"mixing_variance"`
			Diff               float64
			StdErr             float64 `json:"std_err"`
			Lower, Upper       float64
			PValue             float64 `json:"p_value"`
			LogLR              float64 `json:"log_lr"`
			Tau2               float64
		}
	}
	readJSON(t, "options.json", &ref)
	if len(ref.Sequential) == 0 {
		t.Fatal("options.json has no sequential cases")
	}
	var worst worstError
	for _, tc := range ref.Sequential {
		cfg := SequentialConfig{Alpha: tc.Alpha, TuningN: tc.TuningN, MixingVariance: tc.MixingVariance}
		var got Sequential
		var err error
		if tc.Kind == "prop" {
			got, err = SequentialProportions(Proportion{tc.Control.N, tc.Control.Successes},
				Proportion{tc.Treatment.N, tc.Treatment.Successes}, cfg)
		} else {
			got, err = SequentialMeans(Sample{tc.Control.N, tc.Control.Mean, tc.Control.Variance},
				Sample{tc.Treatment.N, tc.Treatment.Mean, tc.Treatment.Variance}, cfg)
		}
		if err != nil {
			t.Errorf("%s: error %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{
			{"Diff", got.Diff, tc.Diff}, {"StdErr", got.StdErr, tc.StdErr},
			{"Lower", got.Lower, tc.Lower}, {"Upper", got.Upper, tc.Upper},
			{"PValue", got.PValue, tc.PValue}, {"LogLikelihoodRatio", got.LogLikelihoodRatio, tc.LogLR},
			{"MixingVariance", got.MixingVariance, tc.Tau2},
		})
		if excl := got.Lower > 0 || got.Upper < 0; excl != got.Significant || got.Significant != (got.PValue <= tc.Alpha) {
			t.Errorf("%s: sequence (%v, %v), p %v, significant %v: disagree", tc.Name, got.Lower, got.Upper, got.PValue, got.Significant)
		}
	}
	worst.log(t)
}

// TestSequentialPValueMatchesSequence checks that the always-valid p-value
// equals alpha where the sequence's bound touches 0, so that p <= alpha iff
// the sequence excludes 0.
func TestSequentialPValueMatchesSequence(t *testing.T) {
	for _, alpha := range []float64{0.01, 0.05, 0.1, 0.2} {
		for _, n := range []int64{100, 5000, 1e6} {
			c := Sample{N: n / 2, Mean: 0, Variance: 1}
			s, err := SequentialMeans(c, c, SequentialConfig{Alpha: alpha})
			if err != nil {
				t.Fatal(err)
			}
			hw := s.Upper - s.Diff
			at, err := SequentialMeans(c, Sample{N: n / 2, Mean: hw, Variance: 1}, SequentialConfig{Alpha: alpha})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(at.PValue-alpha) > 1e-12*alpha || math.Abs(at.Lower) > 1e-12*hw {
				t.Errorf("alpha %v n %d: at Diff = half-width %v: p = %v, lower = %v, want p = alpha, lower = 0", alpha, n, hw, at.PValue, at.Lower)
			}
		}
	}
}

func TestSequentialEdges(t *testing.T) {
	ok := Sample{N: 10, Mean: 1, Variance: 1}
	tests := []struct {
		name      string
		c, tr     Sample
		cfg       SequentialConfig
		wantIs    error
		wantError bool
	}{
		{"one user", Sample{N: 1, Mean: 1}, ok, SequentialConfig{}, ErrInsufficientData, true},
		{"zero variance", Sample{N: 10, Mean: 1}, Sample{N: 10, Mean: 2}, SequentialConfig{}, ErrZeroVariance, true},
		{"alpha 1", ok, ok, SequentialConfig{Alpha: 1}, nil, true},
		{"negative N*", ok, ok, SequentialConfig{TuningN: -1}, nil, true},
		{"NaN mixing variance", ok, ok, SequentialConfig{MixingVariance: math.NaN()}, nil, true},
		{"NaN mean", Sample{N: 10, Mean: math.NaN(), Variance: 1}, ok, SequentialConfig{}, nil, true},
		{"equal arms", ok, ok, SequentialConfig{}, nil, false},
	}
	for _, tt := range tests {
		got, err := SequentialMeans(tt.c, tt.tr, tt.cfg)
		if (err != nil) != tt.wantError || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: SequentialMeans() = %+v, %v, want error %v (%v)", tt.name, got, err, tt.wantError, tt.wantIs)
		}
		if err == nil && (got.PValue != 1 || math.IsNaN(got.Lower) || math.IsNaN(got.Upper)) {
			t.Errorf("%s: SequentialMeans() = %+v, want p 1 and a finite sequence", tt.name, got)
		}
	}
	if _, err := SequentialProportions(Proportion{N: 10}, Proportion{N: 10}, SequentialConfig{}); !errors.Is(err, ErrZeroVariance) {
		t.Errorf("SequentialProportions(all zero) error %v, want ErrZeroVariance", err)
	}
	if _, err := SequentialProportions(Proportion{}, Proportion{N: 10, Successes: 1}, SequentialConfig{}); !errors.Is(err, ErrInsufficientData) {
		t.Errorf("SequentialProportions(empty) error %v, want ErrInsufficientData", err)
	}
}

// arm accumulates one simulated arm's sufficient statistics batch by batch
// (Chan et al.'s parallel update), without per-user arrays.
type arm struct {
	n        int64
	mean, m2 float64
}

// addNormal adds b users drawn from N(mu, sd²): the batch mean is
// N(mu, sd²/b) and the batch sum of squared deviations is sd²·χ²(b-1),
// independent of it.
func (a *arm) addNormal(rng *rand.Rand, chi distuv.ChiSquared, b int64, mu, sd float64) {
	bm := mu + sd/math.Sqrt(float64(b))*rng.NormFloat64()
	bm2 := sd * sd * chi.Rand()
	n := a.n + b
	d := bm - a.mean
	a.mean += d * float64(b) / float64(n)
	a.m2 += bm2 + d*d*float64(a.n)*float64(b)/float64(n)
	a.n = n
}

func (a arm) sample() Sample { return Sample{N: a.n, Mean: a.mean, Variance: a.m2 / float64(a.n-1)} }

// peeking runs sims experiments of looks batches of b users per arm (a true
// difference of delta standard deviations) and returns the share declared
// significant at any look and at the last look, by the sequential test and
// by the fixed-horizon Welch test at level 1-alpha.
func peeking(t *testing.T, seed uint64, sims, looks int, b int64, delta, alpha float64) (seqEver, seqFinal, fixEver, fixFinal float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	chi := distuv.ChiSquared{K: float64(b - 1), Src: rng}
	var se, sf, fe, ff int
	for range sims {
		var c, tr arm
		var seqHit, fixHit bool
		for look := range looks {
			c.addNormal(rng, chi, b, 0, 1)
			tr.addNormal(rng, chi, b, delta, 1)
			s, err := SequentialMeans(c.sample(), tr.sample(), SequentialConfig{Alpha: alpha})
			if err != nil {
				t.Fatal(err)
			}
			w, err := WelchTTest(c.sample(), tr.sample(), 1-alpha)
			if err != nil {
				t.Fatal(err)
			}
			seqHit = seqHit || s.Significant
			fixHit = fixHit || w.PValue <= alpha
			if look == looks-1 {
				if s.Significant {
					sf++
				}
				if w.PValue <= alpha {
					ff++
				}
			}
		}
		if seqHit {
			se++
		}
		if fixHit {
			fe++
		}
	}
	n := float64(sims)
	return float64(se) / n, float64(sf) / n, float64(fe) / n, float64(ff) / n
}

// TestSequentialAAPeeking is the type-I error simulation: A/A tests looked
// at after every batch of users. The sequential test must stay within alpha
// (binomial tolerance) however often it is looked at; the fixed-horizon
// Welch test, looked at as often, must exceed alpha clearly.
func TestSequentialAAPeeking(t *testing.T) {
	const (
		sims  = 4000
		looks = 25
		b     = 200 // users per arm per look: 5000 per arm at the end
		alpha = 0.05
	)
	seqEver, _, fixEver, fixFinal := peeking(t, 20260101, sims, looks, b, 0, alpha)
	sd := math.Sqrt(alpha * (1 - alpha) / sims)
	t.Logf("A/A, %d experiments x %d looks of %d users per arm: ever significant: sequential %.4f, fixed-horizon Welch %.4f (at the last look only %.4f); alpha %.2f, sd %.4f",
		sims, looks, b, seqEver, fixEver, fixFinal, alpha, sd)
	if seqEver > alpha+3*sd {
		t.Errorf("sequential test ever significant in %.4f of A/A tests, want <= alpha + 3 sd = %.4f", seqEver, alpha+3*sd)
	}
	if fixEver < 2*alpha {
		t.Errorf("fixed-horizon test ever significant in %.4f of A/A tests, want well above alpha (>= %.2f)", fixEver, 2*alpha)
	}
	if math.Abs(fixFinal-alpha) > 4*sd {
		t.Errorf("fixed-horizon test significant at the last look in %.4f, want alpha ± 4 sd", fixFinal)
	}
}

// TestSequentialProportionsAAPeeking is the A/A simulation for a binary
// metric (10% conversion) through SequentialProportions and the
// fixed-horizon TwoProportionZTest.
func TestSequentialProportionsAAPeeking(t *testing.T) {
	const (
		sims  = 2000
		looks = 25
		b     = 200
		rate  = 0.1
		alpha = 0.05
	)
	rng := rand.New(rand.NewPCG(12, 13))
	batch := distuv.Binomial{N: b, P: rate, Src: rng}
	var seqEver, fixEver int
	for range sims {
		var c, tr Proportion
		var seqHit, fixHit bool
		for range looks {
			c.N += b
			c.Successes += int64(batch.Rand())
			tr.N += b
			tr.Successes += int64(batch.Rand())
			s, err := SequentialProportions(c, tr, SequentialConfig{Alpha: alpha})
			if err != nil {
				t.Fatal(err)
			}
			z, err := TwoProportionZTest(c, tr, 1-alpha)
			if err != nil {
				t.Fatal(err)
			}
			seqHit = seqHit || s.Significant
			fixHit = fixHit || z.PValue <= alpha
		}
		if seqHit {
			seqEver++
		}
		if fixHit {
			fixEver++
		}
	}
	seq, fix := float64(seqEver)/sims, float64(fixEver)/sims
	sd := math.Sqrt(alpha * (1 - alpha) / sims)
	t.Logf("A/A binary %.0f%%, %d experiments x %d looks of %d users per arm: ever significant: sequential %.4f, fixed-horizon z-test %.4f",
		rate*100, sims, looks, b, seq, fix)
	if seq > alpha+3*sd {
		t.Errorf("sequential test ever significant in %.4f of A/A tests, want <= %.4f", seq, alpha+3*sd)
	}
	if fix < 2*alpha {
		t.Errorf("fixed-horizon test ever significant in %.4f of A/A tests, want >= %.2f", fix, 2*alpha)
	}
}

// TestSequentialPowerAB reports the power of the sequential test against a
// fixed-horizon test at the same final sample, for an effect the
// fixed-horizon test detects about 80% of the time.
func TestSequentialPowerAB(t *testing.T) {
	const (
		sims  = 2000
		looks = 25
		b     = 200
		alpha = 0.05
	)
	// 80% power for the two-sided z-test with 5000 users per arm.
	delta := CurrentMDE(math.Sqrt(2.0/(looks*b)), alpha, 0.8)
	seqEver, seqFinal, fixEver, fixFinal := peeking(t, 7, sims, looks, b, delta, alpha)
	t.Logf("A/B, effect %.4f sd, %d users per arm at the end: power of the fixed-horizon test at the end %.4f; sequential test significant by the end %.4f (at the last look %.4f); fixed-horizon test ever significant when peeked at %.4f (not a valid test)",
		delta, looks*b, fixFinal, seqEver, seqFinal, fixEver)
	if math.Abs(fixFinal-0.8) > 0.04 {
		t.Errorf("fixed-horizon power %.4f, want 0.80 ± 0.04", fixFinal)
	}
	if !(seqEver > 0.4 && seqEver < fixFinal) {
		t.Errorf("sequential power %.4f, want between 0.4 and the fixed-horizon power %.4f", seqEver, fixFinal)
	}
}

func TestSequentialSRMReference(t *testing.T) {
	var ref struct {
		SequentialSRM []struct {
			Name           string
			Observed       []int64
			Weights        []float64
			Concentration  float64
			LogBayesFactor float64 `json:"log_bayes_factor"`
			PValue         float64 `json:"p_value"`
		} `json:"sequential_srm"`
	}
	readJSON(t, "options.json", &ref)
	if len(ref.SequentialSRM) == 0 {
		t.Fatal("options.json has no sequential_srm cases")
	}
	var worst worstError
	for _, tc := range ref.SequentialSRM {
		got, err := SequentialSRMTest(tc.Observed, tc.Weights, tc.Concentration)
		if err != nil {
			t.Errorf("%s: %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{{"LogBayesFactor", got.LogBayesFactor, tc.LogBayesFactor}, {"PValue", got.PValue, tc.PValue}})
	}
	worst.log(t)
	for _, bad := range []struct {
		obs []int64
		w   []float64
		k   float64
	}{
		{[]int64{0, 0}, []float64{1, 1}, 0},
		{[]int64{1}, []float64{1}, 0},
		{[]int64{1, 2}, []float64{1, 0}, 0},
		{[]int64{1, -2}, []float64{1, 1}, 0},
		{[]int64{1, 2}, []float64{1, 1}, -1},
	} {
		if got, err := SequentialSRMTest(bad.obs, bad.w, bad.k); err == nil {
			t.Errorf("SequentialSRMTest(%v, %v, %v) = %+v, want an error", bad.obs, bad.w, bad.k, got)
		}
	}
}

// TestSequentialSRMMonitoring checks the sequential SRM test under
// continuous monitoring: correct 50/50 (and 20/30/50) splits checked after
// every batch of users are flagged at most alpha of the time, while the
// chi-square test checked as often flags more. Mismatches of 51/49 and 53/47 are
// found (their detection rates are logged).
func TestSequentialSRMMonitoring(t *testing.T) {
	const (
		nullSims = 2000
		altSims  = 400 // enough to estimate power
		looks    = 50
		b        = 200 // users per look, all variants
		alpha    = 0.05
	)
	rng := rand.New(rand.NewPCG(3, 4))
	sd := math.Sqrt(alpha * (1 - alpha) / nullSims)
	for _, tc := range []struct {
		name    string
		weights []float64
		truth   []float64
		null    bool
	}{
		{"two_way_correct", []float64{50, 50}, []float64{0.5, 0.5}, true},
		{"three_way_correct", []float64{20, 30, 50}, []float64{0.2, 0.3, 0.5}, true},
		{"two_way_51_49", []float64{50, 50}, []float64{0.51, 0.49}, false},
		{"two_way_53_47", []float64{50, 50}, []float64{0.53, 0.47}, false},
	} {
		sims := altSims
		if tc.null {
			sims = nullSims
		}
		// The chi-square test at alpha, by its critical value (the same
		// decision as ChiSquareGOF's p-value <= alpha, without evaluating
		// the incomplete gamma function 100,000 times).
		chiCrit := distuv.ChiSquared{K: float64(len(tc.weights) - 1)}.Quantile(1 - alpha)
		var seqFlag, chiFlag int
		for range sims {
			counts := make([]int64, len(tc.weights))
			var seqHit, chiHit bool
			for range looks {
				// Multinomial batch by successive binomials.
				left, rest := int64(b), 1.0
				for i, p := range tc.truth {
					x := left
					if i < len(tc.truth)-1 {
						x = int64(distuv.Binomial{N: float64(left), P: min(1, p/rest), Src: rng}.Rand())
					}
					counts[i] += x
					left -= x
					rest -= p
				}
				s, err := SequentialSRMTest(counts, tc.weights, 0)
				if err != nil {
					t.Fatal(err)
				}
				seqHit = seqHit || s.PValue <= alpha
				chiHit = chiHit || chiSquare(counts, tc.weights) >= chiCrit
			}
			if seqHit {
				seqFlag++
			}
			if chiHit {
				chiFlag++
			}
		}
		seq, chi := float64(seqFlag)/float64(sims), float64(chiFlag)/float64(sims)
		t.Logf("%s: %d runs x %d looks of %d users: ever flagged at alpha %.2f: sequential %.4f, chi-square %.4f",
			tc.name, sims, looks, b, alpha, seq, chi)
		switch {
		case tc.null:
			if seq > alpha+3*sd {
				t.Errorf("%s: sequential SRM ever flagged %.4f, want <= %.4f", tc.name, seq, alpha+3*sd)
			}
			if chi < 2*alpha {
				t.Errorf("%s: chi-square ever flagged %.4f, want >= %.2f", tc.name, chi, 2*alpha)
			}
		case seq < chi/4:
			t.Errorf("%s: sequential SRM found the mismatch in %.4f of runs, want at least a quarter of the chi-square's %.4f", tc.name, seq, chi)
		}
	}
}

func BenchmarkSequentialMeans(b *testing.B) {
	c := Sample{N: 5000, Mean: 10, Variance: 9}
	tr := Sample{N: 5100, Mean: 10.2, Variance: 9.5}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SequentialMeans(c, tr, SequentialConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

// chiSquare returns Pearson's statistic of counts against the shares of
// weights, as ChiSquareGOF computes it.
func chiSquare(counts []int64, weights []float64) float64 {
	var n, w float64
	for i, c := range counts {
		n += float64(c)
		w += weights[i]
	}
	var x2 float64
	for i, c := range counts {
		e := n * weights[i] / w
		d := float64(c) - e
		x2 += d * d / e
	}
	return x2
}
