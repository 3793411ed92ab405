package stats

import (
	"fmt"
	"math"
)

// CovariateSample holds one arm's sufficient statistics of a metric Y and a
// pre-experiment covariate X (usually the same metric over a lookback
// window before exposure), over N users: the means, the unbiased (n-1)
// variances and the unbiased covariance.
type CovariateSample struct {
	N                 int64
	Mean, Variance    float64 // of Y
	CovariateMean     float64 // of X
	CovariateVariance float64 // of X
	Covariance        float64 // Cov(X, Y)
}

func (s CovariateSample) check() error {
	if err := (Sample{N: s.N, Mean: s.Mean, Variance: s.Variance}).check(); err != nil {
		return err
	}
	switch {
	case math.IsNaN(s.CovariateMean) || math.IsInf(s.CovariateMean, 0):
		return fmt.Errorf("covariate mean %v is not finite", s.CovariateMean)
	case !(s.CovariateVariance >= 0) || math.IsInf(s.CovariateVariance, 1):
		return fmt.Errorf("covariate variance %v is negative or not finite", s.CovariateVariance)
	case math.IsNaN(s.Covariance) || math.IsInf(s.Covariance, 0):
		return fmt.Errorf("covariance %v is not finite", s.Covariance)
	case s.Covariance*s.Covariance > s.Variance*s.CovariateVariance*(1+1e-9)+1e-300:
		return fmt.Errorf("covariance %v exceeds the variances %v and %v allow", s.Covariance, s.Variance, s.CovariateVariance)
	}
	return nil
}

// CUPED is a comparison of means adjusted for a pre-experiment covariate.
type CUPED struct {
	// Theta is the regression coefficient of Y on X, pooled within arms.
	Theta float64
	// Control and Treatment are the adjusted arms: mean
	// Ȳ - θ(X̄ - X̄pooled) and variance Var(Y) + θ²Var(X) - 2θCov(X, Y).
	Control, Treatment Sample
	// Welch is Welch's test on the adjusted arms.
	Welch Welch
	// Unadjusted is Welch's test on Y alone, for comparison.
	Unadjusted Welch
	// VarianceReduction is 1 - Welch.StdErr²/Unadjusted.StdErr², the share
	// of the variance of the difference removed by the adjustment (about
	// ρ² for a covariate with correlation ρ). It can be slightly negative
	// for a useless covariate.
	VarianceReduction float64
}

// CUPEDTest compares treatment with control after the CUPED adjustment
// (Deng, Xu, Kohavi and Walker 2013) and returns Welch's test of the
// adjusted means at level.
//
// θ = Σ(n_i-1)Cov_i(X, Y) / Σ(n_i-1)Var_i(X) is the within-arm pooled slope,
// so the adjusted difference equals the treatment coefficient of the OLS
// regression Y ~ 1 + treatment + X (ANCOVA). GrowthBook pools the moments
// of both arms as one sample instead, which also counts the difference
// between the arms' means; the two agree to O(1/n) and coincide when the
// arms have equal X means. The variance of θ is not propagated, as in
// every anchor platform: its effect is O(1/n).
//
// A covariate without variance in either arm leaves the metric unadjusted
// (θ = 0). Errors are those of WelchTTest, and an error for inconsistent
// moments (|Cov| > sqrt(Var(X)·Var(Y))).
func CUPEDTest(control, treatment CovariateSample, level float64) (CUPED, error) {
	if err := control.check(); err != nil {
		return CUPED{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return CUPED{}, fmt.Errorf("treatment arm: %w", err)
	}
	un, err := WelchTTest(Sample{control.N, control.Mean, control.Variance},
		Sample{treatment.N, treatment.Mean, treatment.Variance}, level)
	if err != nil {
		return CUPED{}, err
	}
	wc, wt := float64(control.N-1), float64(treatment.N-1)
	sxx := wc*control.CovariateVariance + wt*treatment.CovariateVariance
	var theta float64
	if sxx > 0 {
		theta = (wc*control.Covariance + wt*treatment.Covariance) / sxx
	}
	nc, nt := float64(control.N), float64(treatment.N)
	// Pooled X̄ as the control mean plus a share of the difference, which
	// stays exact when the two means are equal.
	xbar := control.CovariateMean + (treatment.CovariateMean-control.CovariateMean)*(nt/(nc+nt))
	adjust := func(s CovariateSample) Sample {
		v := s.Variance + theta*theta*s.CovariateVariance - 2*theta*s.Covariance
		return Sample{N: s.N, Mean: s.Mean - theta*(s.CovariateMean-xbar), Variance: max(0, v)}
	}
	r := CUPED{Theta: theta, Control: adjust(control), Treatment: adjust(treatment), Unadjusted: un}
	if r.Welch, err = WelchTTest(r.Control, r.Treatment, level); err != nil {
		return CUPED{}, fmt.Errorf("adjusted metric: %w", err)
	}
	r.VarianceReduction = 1 - (r.Welch.StdErr/un.StdErr)*(r.Welch.StdErr/un.StdErr)
	return r, nil
}
