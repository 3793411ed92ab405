package stats

import (
	"fmt"
	"math"
)

// NonInferiorityConfig describes a non-inferiority test: is treatment no
// worse than control by more than Margin, in the metric's direction?
type NonInferiorityConfig struct {
	// Margin is the largest loss that still counts as "not worse": an
	// absolute amount in metric units, or with Relative a fraction of
	// |control mean| (0.01 is 1%). It must be positive.
	Margin   float64
	Relative bool
	// Direction is the metric's good direction: a loss is a decrease for
	// HigherIsBetter and an increase for LowerIsBetter.
	Direction Direction
	// Alpha is the one-sided error rate, in (0, 0.5): 0 means 0.05.
	Alpha float64
}

func (c *NonInferiorityConfig) setDefaults() {
	if c.Alpha == 0 {
		c.Alpha = 0.05
	}
}

// Validate reports whether c, after defaults, is usable.
func (c NonInferiorityConfig) Validate() error {
	c.setDefaults()
	switch {
	case !(c.Margin > 0) || math.IsInf(c.Margin, 1):
		return fmt.Errorf("margin %v is not positive", c.Margin)
	case !(c.Alpha > 0 && c.Alpha < 0.5):
		return fmt.Errorf("one-sided alpha %v is outside (0, 0.5)", c.Alpha)
	}
	return c.Direction.check()
}

// NonInferiority is the result of a one-sided non-inferiority test of
// treatment minus control.
type NonInferiority struct {
	Diff   float64 // treatment - control
	StdErr float64
	// DoF is the Welch–Satterthwaite degrees of freedom, +Inf for the
	// z-test of proportions.
	DoF float64
	// Margin is the absolute margin tested (Margin·|control mean| for a
	// relative margin), always positive.
	Margin float64
	// Statistic is (Diff + Margin)/StdErr for HigherIsBetter and
	// (Diff - Margin)/StdErr for LowerIsBetter.
	Statistic float64
	// PValue is the one-sided p-value of the null hypothesis "treatment is
	// worse by at least Margin".
	PValue float64
	// Bound is the one-sided 1-alpha confidence bound of Diff on the side
	// of harm: a lower bound for HigherIsBetter, an upper bound for
	// LowerIsBetter.
	Bound float64
	// NotWorse reports PValue <= alpha: treatment is shown to be worse by
	// less than Margin (equivalently, Bound is within the margin).
	NotWorse bool
}

// NonInferiorityMeans tests, by Welch's one-sided t-test, whether treatment
// is no worse than control by more than the margin. For HigherIsBetter the
// null hypothesis is Diff <= -Margin; for LowerIsBetter it is Diff >= Margin.
// It matches statsmodels' ttest_ind(usevar="unequal", value=∓Margin,
// alternative="larger" or "smaller").
//
// A relative margin is converted with the observed control mean and treated
// as fixed, as platforms do; the uncertainty of the control mean is not
// propagated into it.
//
// It returns ErrInsufficientData when an arm has fewer than two users,
// ErrZeroVariance when the standard error is 0 and ErrZeroControlMean for a
// relative margin against a control mean of 0.
func NonInferiorityMeans(control, treatment Sample, cfg NonInferiorityConfig) (NonInferiority, error) {
	if err := cfg.Validate(); err != nil {
		return NonInferiority{}, err
	}
	cfg.setDefaults()
	w, err := WelchTTest(control, treatment, 0.95)
	if err != nil {
		return NonInferiority{}, err
	}
	d := studentT{nu: w.DoF}
	upper := func(t float64) float64 { // P(T >= t)
		if t >= 0 {
			return d.twoTail(t) / 2
		}
		return 1 - d.twoTail(t)/2
	}
	return nonInferiority(w.Diff, w.StdErr, w.DoF, control.Mean, cfg, upper, d.critical(2*cfg.Alpha))
}

// NonInferiorityProportions tests a conversion rate as NonInferiorityMeans
// does, by the one-sided z-test with the unpooled (Wald) standard error of
// TwoProportionZTest, as statsmodels' test_proportions_2indep(method="wald",
// compare="diff", value=∓Margin) does.
func NonInferiorityProportions(control, treatment Proportion, cfg NonInferiorityConfig) (NonInferiority, error) {
	if err := cfg.Validate(); err != nil {
		return NonInferiority{}, err
	}
	cfg.setDefaults()
	z, err := TwoProportionZTest(control, treatment, 0.95)
	if err != nil {
		return NonInferiority{}, err
	}
	upper := func(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }
	return nonInferiority(z.Diff, z.StdErr, math.Inf(1), control.Rate(), cfg, upper, NormalCritical(2*cfg.Alpha))
}

// nonInferiority finishes the test given the upper tail of the statistic's
// null distribution and its one-sided critical value.
func nonInferiority(diff, se, dof, controlMean float64, cfg NonInferiorityConfig, upper func(float64) float64, crit float64) (NonInferiority, error) {
	m := cfg.Margin
	if cfg.Relative {
		if controlMean == 0 {
			return NonInferiority{}, ErrZeroControlMean
		}
		m *= math.Abs(controlMean)
	}
	r := NonInferiority{Diff: diff, StdErr: se, DoF: dof, Margin: m}
	if cfg.Direction == LowerIsBetter {
		r.Statistic = (diff - m) / se
		r.PValue = upper(-r.Statistic) // P(T <= t) by symmetry
		r.Bound = diff + crit*se
	} else {
		r.Statistic = (diff + m) / se
		r.PValue = upper(r.Statistic)
		r.Bound = diff - crit*se
	}
	r.NotWorse = r.PValue <= cfg.Alpha
	return r, nil
}
