package stats_test

import (
	"fmt"

	"github.com/abacus-ab/abacus/analysis/stats"
)

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
