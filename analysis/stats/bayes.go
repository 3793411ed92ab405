package stats

import (
	"errors"
	"fmt"
	"math"
)

// ErrZeroControlMean reports a relative effect requested against a control
// mean of 0, where the relative lift is undefined.
var ErrZeroControlMean = errors.New("control mean is 0: relative lift undefined")

// DefaultRiskThreshold is the default risk threshold of the Bayesian
// decision rule: an expected loss of 0.25% of the control mean (GrowthBook's
// default "risk threshold" for a winning variation).
const DefaultRiskThreshold = 0.0025

// NormalPrior is a proper normal prior N(Mean, Variance) on the effect, in
// the effect's units (relative lift for a relative analysis).
type NormalPrior struct {
	Mean, Variance float64
}

// Decision is the recommendation of the Bayesian decision rule.
type Decision string

// Decisions of BayesConfig's rule.
const (
	DecisionShipTreatment Decision = "ship_treatment"
	DecisionKeepControl   Decision = "keep_control"
	DecisionKeepRunning   Decision = "keep_running"
)

// BayesConfig configures a Bayesian comparison. The zero value is an
// absolute analysis of a higher-is-better metric under a flat prior with a
// 95% credible interval and the default risk threshold.
type BayesConfig struct {
	// Relative analyses the relative lift (treatment - control)/|control|
	// instead of the absolute difference.
	Relative bool
	// Direction is the metric's good direction; chance to win and risk
	// follow it.
	Direction Direction
	// Prior is a proper normal prior on the effect; nil is the flat
	// (improper) prior, under which the posterior is the likelihood.
	Prior *NormalPrior
	// Level is the credible level of the interval: 0 means 0.95.
	Level float64
	// RiskThreshold is the expected loss below which the decision rule
	// ships an arm, as a fraction of |control mean|: in relative-lift units
	// for a relative analysis, multiplied by |control mean| for an absolute
	// one (so 0.0025 means a loss of 0.25% of the control mean either
	// way). 0 means DefaultRiskThreshold.
	RiskThreshold float64
}

func (c *BayesConfig) setDefaults() {
	if c.Level == 0 {
		c.Level = 0.95
	}
	if c.RiskThreshold == 0 {
		c.RiskThreshold = DefaultRiskThreshold
	}
}

// Validate reports whether c, after defaults, is usable.
func (c BayesConfig) Validate() error {
	c.setDefaults()
	if err := checkLevel(c.Level); err != nil {
		return err
	}
	if err := c.Direction.check(); err != nil {
		return err
	}
	if !(c.RiskThreshold > 0) || math.IsInf(c.RiskThreshold, 1) {
		return fmt.Errorf("risk threshold %v is not positive", c.RiskThreshold)
	}
	if p := c.Prior; p != nil && (!(p.Variance > 0) || math.IsInf(p.Variance, 1) || math.IsNaN(p.Mean) || math.IsInf(p.Mean, 0)) {
		return fmt.Errorf("prior N(%v, %v) is not a proper normal", p.Mean, p.Variance)
	}
	return nil
}

// Bayes is the Gaussian posterior of an effect (treatment minus control,
// absolute or relative) and the decision quantities derived from it.
type Bayes struct {
	Relative bool
	// Mean and StdDev describe the normal posterior of the effect.
	Mean, StdDev float64
	// CILower and CIUpper bound the equal-tailed credible interval.
	CILower, CIUpper float64
	// ChanceToWin is the posterior probability that treatment is better
	// than control in the metric's direction.
	ChanceToWin float64
	// RiskTreatment is the expected loss of shipping treatment,
	// E[max(0, -gain)], and RiskControl that of keeping control,
	// E[max(0, gain)], where gain is the effect signed by the metric's
	// direction. Both are in the effect's units.
	RiskTreatment, RiskControl float64
	// Threshold is the risk threshold in the effect's units.
	Threshold float64
	// Decision ships the arm whose risk is below Threshold (the lower-risk
	// arm if both are), otherwise keeps running.
	Decision Decision
}

// BayesMeans compares two continuous arms. The likelihood of the effect is
// normal with the Welch standard error (absolute) or the delta-method
// standard error of the lift (relative):
//
//	lift = (m_t - m_c)/|m_c|,  Var = v_t/m_c² + v_c·m_t²/m_c⁴,
//
// with v the variances of the means, as GrowthBook's gbstats does (not the
// log-ratio). A proper prior N(μ0, σ0²) gives the conjugate posterior with
// precision 1/σ0² + 1/SE² and mean (μ0/σ0² + effect/SE²)/precision.
//
// Chance to win is Φ(μg/σ) and the risks are the closed forms
// E[max(0, -G)] = σφ(μg/σ) - μgΦ(-μg/σ) and E[max(0, G)] = that + μg, for
// the gain G ~ N(μg, σ²), μg = ±Mean.
//
// The decision rule ships treatment when its risk is below the threshold
// (and not above control's), keeps control when control's risk is below
// it, and otherwise keeps running. With the default threshold that is
// GrowthBook's rule of thumb: act once the expected loss of acting is under
// 0.25% of the control mean.
//
// It returns ErrInsufficientData for an arm with fewer than two users,
// ErrZeroVariance when the standard error is 0 and ErrZeroControlMean for a
// relative analysis against a control mean of 0. An absolute analysis
// against a control mean of 0 has a risk threshold of 0 and never decides.
func BayesMeans(control, treatment Sample, cfg BayesConfig) (Bayes, error) {
	if err := control.check(); err != nil {
		return Bayes{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return Bayes{}, fmt.Errorf("treatment arm: %w", err)
	}
	return bayes(control.Mean, control.Variance/float64(control.N),
		treatment.Mean, treatment.Variance/float64(treatment.N), cfg)
}

// BayesProportions compares two conversion rates as BayesMeans does, with
// the variance p(1-p)/n of each rate (the normal approximation GrowthBook
// uses). STATS.md's example, 100/1000 against 130/1000 under the flat
// prior, gives a chance to win of 0.982 absolute and 0.967 relative.
func BayesProportions(control, treatment Proportion, cfg BayesConfig) (Bayes, error) {
	if err := control.check(); err != nil {
		return Bayes{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return Bayes{}, fmt.Errorf("treatment arm: %w", err)
	}
	pc, pt := control.Rate(), treatment.Rate()
	return bayes(pc, pc*(1-pc)/float64(control.N), pt, pt*(1-pt)/float64(treatment.N), cfg)
}

// bayes works from the arms' means and the variances of the means.
func bayes(mc, vc, mt, vt float64, cfg BayesConfig) (Bayes, error) {
	if err := cfg.Validate(); err != nil {
		return Bayes{}, err
	}
	cfg.setDefaults()
	effect, v := mt-mc, vc+vt
	threshold := cfg.RiskThreshold * math.Abs(mc)
	if cfg.Relative {
		if mc == 0 {
			return Bayes{}, ErrZeroControlMean
		}
		m2 := mc * mc
		effect = (mt - mc) / math.Abs(mc)
		v = vt/m2 + vc*(mt/m2)*(mt/m2)
		threshold = cfg.RiskThreshold
	}
	switch {
	case v == 0:
		return Bayes{}, ErrZeroVariance
	case math.IsInf(v, 1) || math.IsNaN(v) || math.IsInf(effect, 0):
		return Bayes{}, fmt.Errorf("effect %v with variance %v is not finite", effect, v)
	}
	mean, post := effect, v
	if p := cfg.Prior; p != nil {
		prec := 1/p.Variance + 1/v
		post = 1 / prec
		mean = (p.Mean/p.Variance + effect/v) / prec
	}
	sd := math.Sqrt(post)
	h := NormalCritical(1-cfg.Level) * sd
	mg := cfg.Direction.sign() * mean
	x := mg / sd
	r := Bayes{
		Relative:    cfg.Relative,
		Mean:        mean,
		StdDev:      sd,
		CILower:     mean - h,
		CIUpper:     mean + h,
		ChanceToWin: 0.5 * math.Erfc(-x/math.Sqrt2),
		Threshold:   threshold,
	}
	// E[max(0, -G)] = σ·L(x) and E[max(0, G)] = σ·L(-x), with
	// L(x) = φ(x) - x·Φ(-x).
	r.RiskTreatment = sd * normalLoss(x)
	r.RiskControl = sd * normalLoss(-x)
	// A control mean of 0 in an absolute analysis leaves a threshold of 0:
	// no arm is ever shipped, and the decision stays keep_running.
	switch {
	case r.RiskTreatment < threshold && r.RiskTreatment <= r.RiskControl:
		r.Decision = DecisionShipTreatment
	case r.RiskControl < threshold:
		r.Decision = DecisionKeepControl
	default:
		r.Decision = DecisionKeepRunning
	}
	return r, nil
}

// normalLoss returns L(x) = E[max(0, -(x+Z))] = φ(x) - x·Φ(-x) for a
// standard normal Z, without cancellation for large x.
func normalLoss(x float64) float64 {
	phi := math.Exp(-x*x/2) / math.Sqrt(2*math.Pi)
	if x < 3 {
		// The difference loses at most one digit here.
		return phi - x*0.5*math.Erfc(x/math.Sqrt2)
	}
	// Laplace's continued fraction of the Mills ratio,
	// Φ(-x)/φ(x) = 1/(x + c), c = 1/(x + 2/(x + 3/(x + ...))), gives
	// L(x) = φ(x)·(1 - x/(x+c)) = φ(x)·c/(x+c) with no subtraction.
	// 200 levels converge to full precision for x >= 3.
	var tail float64
	for k := 200; k >= 2; k-- {
		tail = float64(k) / (x + tail)
	}
	c := 1 / (x + tail)
	return phi * c / (x + c)
}
