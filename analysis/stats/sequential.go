package stats

import (
	"fmt"
	"math"
)

// Sequential (always-valid) inference for the difference of two arms.
//
// The default method is the asymptotic confidence sequence of Waudby-Smith
// et al. ("Time-uniform central limit theory and asymptotic confidence
// sequences", 2021) in the form GrowthBook and PostHog use:
//
//	ρ  = sqrt((-2 ln α + ln(-2 ln α + 1)) / N*)
//	hw = sqrt(N·SE²) · sqrt( 2(Nρ²+1)/(N²ρ²) · ln( sqrt(Nρ²+1)/α ) )
//
// with N = n_control + n_treatment, SE the standard error of the difference
// and α = 1 - level. N* (TuningN, default 5000) is the total sample size the
// boundary is optimised for: of all normal-mixture sequences, this ρ gives
// (approximately) the narrowest interval at N = N*. Set it near the total
// sample the experiment is expected to reach; a smaller N* tightens early
// looks at the cost of later ones, a larger N* the reverse.
//
// This is the normal-mixture boundary of Robbins, so the same sequence is the
// mixture sequential probability ratio test (mSPRT, Johari et al. 2017) with
// a normal mixing distribution N(0, τ²) on the difference and τ² = ρ²·N·SE²:
//
//	Λ = sqrt(SE²/(SE²+τ²)) · exp( τ²·Diff² / (2 SE² (SE²+τ²)) ),
//
// and the always-valid p-value is min(1, 1/Λ). Both depend on the data only
// through z = Diff/SE and k = τ²/SE² (= Nρ² under the tuning): the p-value is
// sqrt(1+k)·exp(-z²k/(2(1+k))), and the half-width is
// SE·sqrt(2(1+k)/k · ln(sqrt(1+k)/α)). Hence p ≤ α exactly when the 1-α
// sequence excludes 0. Callers who prefer the mSPRT parametrisation of
// Statsig and Optimizely set MixingVariance (τ² in squared metric units)
// instead of TuningN.
//
// Validity is time-uniform: the probability that the sequence ever excludes
// the true difference, at any of arbitrarily many looks, is at most α
// (asymptotically, as with every normal-approximation test). The p-value
// returned is that of the current look; the running minimum over looks is
// also valid, and never larger.

// DefaultTuningN is GrowthBook's default N*, the total users for which the
// confidence sequence is optimised.
const DefaultTuningN = 5000

// SequentialConfig tunes the sequential test. The zero value means alpha
// 0.05 and N* = DefaultTuningN.
type SequentialConfig struct {
	// Alpha is the two-sided error rate, 1 - level: 0 means 0.05.
	Alpha float64
	// TuningN is N*, the total users (both arms) for which the sequence is
	// optimised, ideally the expected final sample: 0 means DefaultTuningN.
	// Ignored when MixingVariance is set.
	TuningN float64
	// MixingVariance, when positive, is the variance τ² of the normal
	// mixing distribution of the mSPRT, in squared metric units: the size
	// of the effects the test is tuned to find quickly.
	MixingVariance float64
}

func (c *SequentialConfig) setDefaults() {
	if c.Alpha == 0 {
		c.Alpha = 0.05
	}
	if c.TuningN == 0 {
		c.TuningN = DefaultTuningN
	}
}

// Validate reports whether c, after defaults, is usable.
func (c SequentialConfig) Validate() error {
	c.setDefaults()
	switch {
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("alpha %v is outside (0, 1)", c.Alpha)
	case !(c.TuningN > 0) || math.IsInf(c.TuningN, 1):
		return fmt.Errorf("tuning sample size %v is not positive", c.TuningN)
	case !(c.MixingVariance >= 0) || math.IsInf(c.MixingVariance, 1):
		return fmt.Errorf("mixing variance %v is negative or not finite", c.MixingVariance)
	}
	return nil
}

// Rho returns the tuning ρ of the confidence sequence for alpha and N*.
func (c SequentialConfig) Rho() float64 {
	c.setDefaults()
	l := -2 * math.Log(c.Alpha)
	return math.Sqrt((l + math.Log1p(l)) / c.TuningN)
}

// Sequential is one look of a sequential test of treatment minus control.
type Sequential struct {
	Diff   float64 // treatment - control
	StdErr float64 // standard error of Diff (as in the fixed-horizon test)
	N      int64   // users in both arms
	// Lower and Upper bound the 1-alpha confidence sequence at this look.
	Lower, Upper float64
	// PValue is the always-valid p-value, min(1, 1/Λ); it is at most alpha
	// exactly when the sequence excludes 0.
	PValue float64
	// LogLikelihoodRatio is ln Λ, the log of the mixture likelihood ratio
	// (the e-value) against no difference.
	LogLikelihoodRatio float64
	// MixingVariance is the τ² in use: ρ²·N·SE² under the N* tuning.
	MixingVariance float64
	// Significant reports PValue <= alpha.
	Significant bool
}

// SequentialMeans runs the sequential test on two continuous arms, with the
// standard error of the Welch test (normal approximation).
//
// It returns ErrInsufficientData when an arm has fewer than two users and
// ErrZeroVariance when the standard error is 0.
func SequentialMeans(control, treatment Sample, cfg SequentialConfig) (Sequential, error) {
	if err := control.check(); err != nil {
		return Sequential{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return Sequential{}, fmt.Errorf("treatment arm: %w", err)
	}
	se2 := control.Variance/float64(control.N) + treatment.Variance/float64(treatment.N)
	return sequential(treatment.Mean-control.Mean, se2, control.N+treatment.N, cfg)
}

// SequentialProportions runs the sequential test on two conversion rates,
// with the unpooled standard error of TwoProportionZTest.
//
// It returns ErrInsufficientData when an arm has no users and
// ErrZeroVariance when the standard error is 0.
func SequentialProportions(control, treatment Proportion, cfg SequentialConfig) (Sequential, error) {
	if err := control.check(); err != nil {
		return Sequential{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return Sequential{}, fmt.Errorf("treatment arm: %w", err)
	}
	pc, pt := control.Rate(), treatment.Rate()
	se2 := pc*(1-pc)/float64(control.N) + pt*(1-pt)/float64(treatment.N)
	return sequential(pt-pc, se2, control.N+treatment.N, cfg)
}

// sequential is the test of an asymptotically normal estimate diff with
// variance se2 after n users.
func sequential(diff, se2 float64, n int64, cfg SequentialConfig) (Sequential, error) {
	if err := cfg.Validate(); err != nil {
		return Sequential{}, err
	}
	cfg.setDefaults()
	switch {
	case se2 == 0:
		return Sequential{}, ErrZeroVariance
	case math.IsInf(se2, 1) || math.IsNaN(se2):
		return Sequential{}, fmt.Errorf("standard error of the difference is not finite: variance %v", se2)
	}
	se := math.Sqrt(se2)
	// k = τ²/SE², the ratio of the mixing variance to the estimate's.
	var k float64
	if cfg.MixingVariance > 0 {
		k = cfg.MixingVariance / se2
	} else {
		rho := cfg.Rho()
		k = float64(n) * rho * rho
	}
	if math.IsInf(k, 1) {
		return Sequential{}, fmt.Errorf("mixing variance %v is too large for standard error %v", cfg.MixingVariance, se)
	}
	z := diff / se
	logLR := -0.5*math.Log1p(k) + 0.5*z*z*(k/(1+k))
	hw := se * math.Sqrt(2*(1+k)/k*(0.5*math.Log1p(k)-math.Log(cfg.Alpha)))
	p := 1.0
	if logLR > 0 {
		p = math.Exp(-logLR)
	}
	return Sequential{
		Diff:               diff,
		StdErr:             se,
		N:                  n,
		Lower:              diff - hw,
		Upper:              diff + hw,
		PValue:             p,
		LogLikelihoodRatio: logLR,
		MixingVariance:     k * se2,
		Significant:        p <= cfg.Alpha,
	}, nil
}

// DefaultSRMConcentration is the default concentration k of the Dirichlet
// prior of SequentialSRMTest (as in the authors' savvi library).
const DefaultSRMConcentration = 100

// SequentialSRM is the result of the sequential sample ratio mismatch test.
type SequentialSRM struct {
	// LogBayesFactor is the log Bayes factor of the Dirichlet-multinomial
	// mixture against the configured split.
	LogBayesFactor float64
	// PValue is min(1, 1/BayesFactor), valid under continuous monitoring:
	// flagging whenever PValue < alpha keeps the chance of ever flagging a
	// correct split below alpha.
	PValue float64
}

// SequentialSRMTest is the sequential sample ratio mismatch test of Lindon
// and Malek ("Anytime-valid inference for multinomial count data", 2022),
// the one Optimizely runs: a Bayes factor of the users per variant observed
// against the expected shares weights, with a Dirichlet(k·θ0) prior on the
// shares under the alternative (θ0 = weights/sum(weights)):
//
//	BF = Γ(k)/Γ(k+n) · Π Γ(kθ0_i + x_i)/Γ(kθ0_i) / Π θ0_i^x_i.
//
// By Ville's inequality 1/BF is an always-valid p-value, so the check can
// run after every batch of users. concentration is k; 0 means
// DefaultSRMConcentration. Larger k centres the alternative more tightly on
// the configured split (better at finding small mismatches late, worse at
// finding gross ones early).
func SequentialSRMTest(observed []int64, weights []float64, concentration float64) (SequentialSRM, error) {
	if concentration == 0 {
		concentration = DefaultSRMConcentration
	}
	if !(concentration > 0) || math.IsInf(concentration, 1) {
		return SequentialSRM{}, fmt.Errorf("concentration %v is not positive", concentration)
	}
	if len(observed) != len(weights) || len(observed) < 2 {
		return SequentialSRM{}, fmt.Errorf("%d counts for %d weights: want the same number, at least 2", len(observed), len(weights))
	}
	var n, wsum float64
	for i, o := range observed {
		if o < 0 || !(weights[i] > 0) || math.IsInf(weights[i], 1) {
			return SequentialSRM{}, fmt.Errorf("count %d or weight %v is not usable", o, weights[i])
		}
		n += float64(o)
		wsum += weights[i]
	}
	if n == 0 {
		return SequentialSRM{}, ErrInsufficientData
	}
	// ln BF = ln Γ(k) - ln Γ(k+n) + Σ [ln Γ(a_i+x_i) - ln Γ(a_i) - x_i ln θ_i]
	// with a_i = kθ_i. With n in the millions the log-gammas are ~1e9 and
	// cancel to O(1), so the Stirling main parts (z-½)ln z - z of the
	// large terms are combined analytically first. With M = k+n and
	// s_i = (a_i+x_i)/M they reduce to
	//   Σ [x_i·log1p((x_i - nθ_i)/(θ_i M)) + (a_i-½) ln s_i] + (m-1)/2·ln(2π/M),
	// whose terms are O(√n) at most; the Stirling remainders are small.
	m := float64(len(observed))
	mm := concentration + n
	lbf := lgamma(concentration) + (m-1)/2*math.Log(2*math.Pi/mm) - stirlingRemainder(mm)
	for i, o := range observed {
		th := weights[i] / wsum
		a := concentration * th
		x := float64(o)
		z := a + x
		lbf += stirlingRemainder(z) - lgamma(a) + (a-0.5)*math.Log(z/mm)
		if o > 0 {
			lbf += x * math.Log1p((x-n*th)/(th*mm))
		}
	}
	p := 1.0
	if lbf > 0 {
		p = math.Exp(-lbf)
	}
	return SequentialSRM{LogBayesFactor: lbf, PValue: p}, nil
}

// stirlingRemainder returns ln Γ(z) - ((z-½)ln z - z + ½ln 2π) for z > 0.
func stirlingRemainder(z float64) float64 {
	if z < 10 {
		return lgamma(z) - ((z-0.5)*math.Log(z) - z + 0.5*math.Log(2*math.Pi))
	}
	// The Stirling series; at z >= 10 its next term is below 1e-16.
	r := 1 / z
	r2 := r * r
	return r * (1.0/12 - r2*(1.0/360-r2*(1.0/1260-r2*(1.0/1680-r2*(1.0/1188-r2*(691.0/360360-r2/156))))))
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
