package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// A/A simulations on sufficient statistics: every arm draws from the same
// distribution, so every significant result is a false positive. Sample
// means and variances of normal data are drawn exactly (mean ~ N(mu,
// sigma²/n), variance ~ sigma²·chi²(n-1)/(n-1)); binary arms draw binomial
// counts.

// within reports whether rate is within 4 binomial standard errors of alpha
// over sims trials (a false alarm about once in 16,000 runs).
func within(rate, alpha float64, sims int) bool {
	return math.Abs(rate-alpha) <= 4*math.Sqrt(alpha*(1-alpha)/float64(sims))
}

func normalArm(rng *rand.Rand, n int64, mu, sigma float64) stats.Sample {
	mean := distuv.Normal{Mu: mu, Sigma: sigma / math.Sqrt(float64(n)), Src: rng}.Rand()
	v := distuv.ChiSquared{K: float64(n - 1), Src: rng}.Rand() * sigma * sigma / float64(n-1)
	return stats.Sample{N: n, Mean: mean, Variance: v}
}

func binaryArm(rng *rand.Rand, n int64, p float64) stats.Proportion {
	return stats.Proportion{N: n, Successes: int64(distuv.Binomial{N: float64(n), P: p, Src: rng}.Rand())}
}

func TestAAFalsePositiveRate(t *testing.T) {
	const sims, alpha = 20000, 0.05
	rng := rand.New(rand.NewPCG(1, 2))
	var welch, prop int
	for range sims {
		w, err := stats.WelchTTest(normalArm(rng, 200, 10, 3), normalArm(rng, 250, 10, 3), 1-alpha)
		if err != nil {
			t.Fatal(err)
		}
		if w.PValue < alpha {
			welch++
		}
		z, err := stats.TwoProportionZTest(binaryArm(rng, 2000, 0.1), binaryArm(rng, 2000, 0.1), 1-alpha)
		if err != nil {
			t.Fatal(err)
		}
		if z.PValue < alpha {
			prop++
		}
	}
	for _, r := range []struct {
		name string
		hits int
	}{{"welch", welch}, {"two-proportion z", prop}} {
		rate := float64(r.hits) / sims
		t.Logf("A/A %s: false-positive rate %.4f (%d of %d tests, alpha %.2f)", r.name, rate, r.hits, sims, alpha)
		if !within(rate, alpha, sims) {
			t.Errorf("A/A %s false-positive rate %.4f, want %.2f within 4 binomial SE", r.name, rate, alpha)
		}
	}
}

// TestAAFamilyWiseErrorRate runs A/A tests with 4 variants (3 comparisons
// with a shared control) through BuildReport and counts the tests with any
// adjusted p-value below alpha (in either direction), and those that declare
// a winner: with Holm's or Benjamini-Hochberg's correction (which under the
// complete null also controls the family-wise rate) neither may exceed
// alpha, while uncorrected p-values exceed it by far.
func TestAAFamilyWiseErrorRate(t *testing.T) {
	const sims, alpha = 20000, 0.05
	rng := rand.New(rand.NewPCG(3, 4))
	def := &experiment.Test{
		ID: "aa", Name: "aa", Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "m",
		Variants: []experiment.Variant{
			{ID: "a", TrafficPercentage: 25}, {ID: "b", TrafficPercentage: 25},
			{ID: "c", TrafficPercentage: 25}, {ID: "d", TrafficPercentage: 25},
		},
	}
	def.SetDefaults()
	bh := *def
	bh.MultipleComparison = experiment.CorrectionBenjaminiHochberg
	var holmFW, bhFW, rawFW, holmWin, bhWin int
	anySig := func(r *experiment.Report) bool {
		for _, c := range r.Metrics[0].Comparisons {
			if c.SignificantAdjusted {
				return true
			}
		}
		return false
	}
	for range sims {
		arms := map[string]stats.Sample{}
		for _, v := range def.Variants {
			arms[v.ID] = normalArm(rng, 500, 10, 3)
		}
		d := Data{Metrics: map[string]map[string]stats.Sample{"m": arms}}
		r := BuildReport(def, d, time.Time{})
		if anySig(r) {
			holmFW++
		}
		if r.WinnerVariantID != nil {
			holmWin++
		}
		rb := BuildReport(&bh, d, time.Time{})
		if anySig(rb) {
			bhFW++
		}
		if rb.WinnerVariantID != nil {
			bhWin++
		}
		for _, c := range r.Metrics[0].Comparisons {
			if c.Significant {
				rawFW++
				break
			}
		}
	}
	limit := alpha + 4*math.Sqrt(alpha*(1-alpha)/sims)
	for _, r := range []struct {
		name string
		hits int
	}{
		{"holm: any adjusted p < alpha", holmFW}, {"holm: a winner declared", holmWin},
		{"benjamini_hochberg: any adjusted p < alpha", bhFW}, {"benjamini_hochberg: a winner declared", bhWin},
	} {
		rate := float64(r.hits) / sims
		t.Logf("A/A 4 variants, %s: rate %.4f over %d tests", r.name, rate, sims)
		if rate > limit {
			t.Errorf("A/A %s family-wise error rate %.4f, want <= %.2f (+4 SE)", r.name, rate, alpha)
		}
	}
	raw := float64(rawFW) / sims
	t.Logf("A/A 4 variants, uncorrected: family-wise error rate %.4f", raw)
	if raw < 0.09 {
		t.Errorf("uncorrected family-wise rate %.4f: the simulation should show the inflation (about 0.12)", raw)
	}
}
