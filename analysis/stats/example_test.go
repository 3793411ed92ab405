package stats_test

import (
	"fmt"

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
