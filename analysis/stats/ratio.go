package stats

import (
	"errors"
	"fmt"
	"math"
)

// ErrZeroDenominator reports a ratio metric whose denominator has mean 0 in
// an arm (no sessions, no orders), where the ratio is undefined.
var ErrZeroDenominator = errors.New("denominator mean is 0: ratio undefined")

// RatioSample holds one arm's sufficient statistics of a ratio metric, such
// as revenue per session, over N users: the means and unbiased (n-1)
// variances of the per-user numerator and denominator and their unbiased
// covariance.
type RatioSample struct {
	N                                    int64
	NumeratorMean, NumeratorVariance     float64
	DenominatorMean, DenominatorVariance float64
	Covariance                           float64
}

// Ratio returns NumeratorMean/DenominatorMean.
func (s RatioSample) Ratio() float64 { return s.NumeratorMean / s.DenominatorMean }

// RatioVariance returns the delta-method variance of the arm's ratio
// estimate:
//
//	Var(R) ≈ (1/n)·(Var(N)/μ_D² - 2μ_N·Cov(N, D)/μ_D³ + μ_N²·Var(D)/μ_D⁴).
func (s RatioSample) RatioVariance() float64 {
	d := s.DenominatorMean
	r := s.NumeratorMean / d
	v := (s.NumeratorVariance - 2*r*s.Covariance + r*r*s.DenominatorVariance) / (d * d)
	return max(0, v) / float64(s.N)
}

func (s RatioSample) check() error {
	switch {
	case s.N < 0:
		return fmt.Errorf("user count %d is negative", s.N)
	case s.N < 2:
		return fmt.Errorf("n = %d: %w", s.N, ErrInsufficientData)
	case !finite(s.NumeratorMean) || !finite(s.DenominatorMean) || !finite(s.Covariance):
		return fmt.Errorf("means %v, %v or covariance %v not finite", s.NumeratorMean, s.DenominatorMean, s.Covariance)
	case !(s.NumeratorVariance >= 0) || !(s.DenominatorVariance >= 0) ||
		math.IsInf(s.NumeratorVariance, 1) || math.IsInf(s.DenominatorVariance, 1):
		return fmt.Errorf("variances %v, %v are negative or not finite", s.NumeratorVariance, s.DenominatorVariance)
	case s.Covariance*s.Covariance > s.NumeratorVariance*s.DenominatorVariance*(1+1e-9)+1e-300:
		return fmt.Errorf("covariance %v exceeds the variances %v and %v allow", s.Covariance, s.NumeratorVariance, s.DenominatorVariance)
	case s.DenominatorMean == 0:
		return ErrZeroDenominator
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// RatioComparison compares a ratio metric between two arms.
type RatioComparison struct {
	// Control and Treatment are the arms' ratios, ControlVariance and
	// TreatmentVariance their delta-method variances.
	Control, Treatment                 float64
	ControlVariance, TreatmentVariance float64
	Diff                               float64 // Treatment - Control
	StdErr                             float64 // sqrt(ControlVariance + TreatmentVariance)
	Z                                  float64 // Diff / StdErr
	PValue                             float64 // two-sided, normal
	CILower, CIUpper                   float64 // Diff ∓ z_{1-(1-level)/2}·StdErr
	// Lift is the Fieller interval of (Treatment - Control)/|Control| at the
	// same critical value, which agrees with the test of Diff.
	Lift RelativeInterval
}

// CompareRatios compares a ratio metric (the mean numerator over the mean
// denominator, e.g. revenue per session with users as the unit) between
// two arms by a z-test with delta-method variances, which count the
// within-user covariance of numerator and denominator. The test is the
// normal one: the delta method is itself a large-sample approximation.
//
// It returns ErrInsufficientData for an arm with fewer than two users,
// ErrZeroDenominator for an arm whose denominator mean is 0 and
// ErrZeroVariance when the standard error of the difference is 0.
func CompareRatios(control, treatment RatioSample, level float64) (RatioComparison, error) {
	if err := checkLevel(level); err != nil {
		return RatioComparison{}, err
	}
	if err := control.check(); err != nil {
		return RatioComparison{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return RatioComparison{}, fmt.Errorf("treatment arm: %w", err)
	}
	r := RatioComparison{
		Control: control.Ratio(), Treatment: treatment.Ratio(),
		ControlVariance: control.RatioVariance(), TreatmentVariance: treatment.RatioVariance(),
	}
	se2 := r.ControlVariance + r.TreatmentVariance
	switch {
	case se2 == 0:
		return RatioComparison{}, ErrZeroVariance
	case !finite(se2) || !finite(r.Control) || !finite(r.Treatment):
		return RatioComparison{}, fmt.Errorf("ratios %v, %v with variance %v are not finite", r.Control, r.Treatment, se2)
	}
	r.Diff = r.Treatment - r.Control
	r.StdErr = math.Sqrt(se2)
	r.Z = r.Diff / r.StdErr
	r.PValue = NormalTwoTail(r.Z)
	crit := NormalCritical(1 - level)
	r.CILower, r.CIUpper = r.Diff-crit*r.StdErr, r.Diff+crit*r.StdErr
	r.Lift = Fieller(r.Control, r.ControlVariance, r.Treatment, r.TreatmentVariance, crit)
	return r, nil
}
