package stats_test

import (
	"fmt"
	"math"

	"github.com/abacus-ab/abacus/analysis/stats"
)

// The continuous example of STATS.md: 500 users with mean 10 and standard
// deviation 3 against 520 users with mean 10.6 and standard deviation 3.2.
func ExampleWelchTTest() {
	control := stats.Sample{N: 500, Mean: 10, Variance: 3 * 3}
	treatment := stats.Sample{N: 520, Mean: 10.6, Variance: 3.2 * 3.2}
	w, err := stats.WelchTTest(control, treatment, 0.95)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("diff %.3f, 95%% CI (%.3f, %.3f), t %.3f, dof %.1f, p %.5f\n",
		w.Diff, w.CILower, w.CIUpper, w.T, w.DoF, w.PValue)
	// Output: diff 0.600, 95% CI (0.219, 0.981), t 3.090, dof 1017.4, p 0.00205
}

func ExampleMeanInterval() {
	lo, hi, err := stats.MeanInterval(stats.Sample{N: 20, Mean: 4.2, Variance: 1.44}, 0.95)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("(%.3f, %.3f)\n", lo, hi)
	// Output: (3.638, 4.762)
}

// The binary example of STATS.md: 100 of 1,000 users converted in control,
// 130 of 1,000 in treatment. Fieller's interval of the relative lift agrees
// with the absolute test; the symmetric delta-method interval (-0.019,
// 0.619) would not.
func ExampleTwoProportionZTest() {
	control := stats.Proportion{N: 1000, Successes: 100}
	treatment := stats.Proportion{N: 1000, Successes: 130}
	z, err := stats.TwoProportionZTest(control, treatment, 0.95)
	if err != nil {
		fmt.Println(err)
		return
	}
	pc, pt := control.Rate(), treatment.Rate()
	rel := stats.Fieller(pc, pc*(1-pc)/1000, pt, pt*(1-pt)/1000, stats.NormalCritical(0.05))
	fmt.Printf("diff %.3f, 95%% CI (%.4f, %.4f), p %.4f (pooled %.4f)\n", z.Diff, z.CILower, z.CIUpper, z.PValue, z.PValuePooled)
	fmt.Printf("relative lift 95%% CI (%.3f, %.3f)\n", rel.Lower, rel.Upper)
	// Output:
	// diff 0.030, 95% CI (0.0021, 0.0579), p 0.0353 (pooled 0.0355)
	// relative lift 95% CI (0.018, 0.675)
}

func ExamplePowerSpec_SampleSize() {
	// Users per arm to detect 10% -> 11% with 80% power at alpha 0.05.
	p := stats.PowerSpec{Binary: true, Baseline: 0.10, Ratio: 1, Alpha: 0.05}
	n, err := p.SampleSize(0.01, 0.8)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f users per arm\n", math.Ceil(n))
	// Output: 14749 users per arm
}

// STATS.md's binary example, 100/1000 against 130/1000, is significant at a
// fixed horizon (p = 0.035) but not yet under continuous monitoring.
func ExampleSequentialProportions() {
	s, err := stats.SequentialProportions(
		stats.Proportion{N: 1000, Successes: 100},
		stats.Proportion{N: 1000, Successes: 130},
		stats.SequentialConfig{}, // alpha 0.05, N* = 5000
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("diff %.3f, 95%% confidence sequence (%.4f, %.4f), always-valid p %.3f\n", s.Diff, s.Lower, s.Upper, s.PValue)
	// Output: diff 0.030, 95% confidence sequence (-0.0145, 0.0745), always-valid p 0.379
}

// STATS.md's Bayesian example: chance to win 0.982 on the absolute
// difference and 0.967 on the relative lift.
func ExampleBayesProportions() {
	c := stats.Proportion{N: 1000, Successes: 100}
	t := stats.Proportion{N: 1000, Successes: 130}
	for _, relative := range []bool{false, true} {
		b, err := stats.BayesProportions(c, t, stats.BayesConfig{Relative: relative})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("relative %v: effect %.3f, chance to win %.3f, risk %.5f, %s\n",
			relative, b.Mean, b.ChanceToWin, b.RiskTreatment, b.Decision)
	}
	// Output:
	// relative false: effect 0.030, chance to win 0.982, risk 0.00009, ship_treatment
	// relative true: effect 0.300, chance to win 0.967, risk 0.00209, ship_treatment
}

// A guardrail: latency (lower is better) may not grow by more than 2%.
func ExampleNonInferiorityMeans() {
	control := stats.Sample{N: 5000, Mean: 250, Variance: 40 * 40}
	treatment := stats.Sample{N: 5000, Mean: 251, Variance: 42 * 42}
	r, err := stats.NonInferiorityMeans(control, treatment, stats.NonInferiorityConfig{
		Margin: 0.02, Relative: true, Direction: stats.LowerIsBetter,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("diff %.2f ms, 95%% upper bound %.2f ms, margin %.1f ms, p %.2g, not worse: %v\n",
		r.Diff, r.Bound, r.Margin, r.PValue, r.NotWorse)
	// Output: diff 1.00 ms, 95% upper bound 2.35 ms, margin 5.0 ms, p 5.5e-07, not worse: true
}
