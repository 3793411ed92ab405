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
