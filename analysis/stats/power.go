package stats

import (
	"errors"
	"fmt"
	"math"
)

// Power calculations for the two-sided z-test of a difference between two
// independent arms, a treatment with n users and a control with Ratio·n
// users (the large-sample form of the tests Abacus runs). They match
// statsmodels' normal_power_het (and NormalIndPower for continuous metrics):
//
//	power = Φ̄(z - δ·√n/s) + Φ(-z - δ·√n/s),  z = Φ⁻¹(1 - alpha/2),
//
// where s is the per-user standard deviation of the difference scaled to the
// treatment's n: s = σ·sqrt(1 + 1/ratio) for a continuous metric with common
// standard deviation σ, and s = sqrt(pt(1-pt) + pc(1-pc)/ratio) for a binary
// one (the unpooled variance of the test Abacus runs).

// ErrUnreachable reports a power target that no sample size or effect can
// reach within the metric's range (a binary rate cannot exceed 1).
var ErrUnreachable = errors.New("power target cannot be reached")

// PowerSpec describes a planned comparison.
type PowerSpec struct {
	Binary bool
	// Baseline is the control's mean (the conversion rate for binary).
	Baseline float64
	// StdDev is the per-user standard deviation (continuous only).
	StdDev float64
	// Ratio is control users per treatment user (control share / treatment share).
	Ratio float64
	Alpha float64
}

func (p PowerSpec) check() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fmt.Errorf("alpha %v is outside (0, 1)", p.Alpha)
	case !(p.Ratio > 0) || math.IsInf(p.Ratio, 0):
		return fmt.Errorf("ratio %v is not positive", p.Ratio)
	case p.Binary && !(p.Baseline > 0 && p.Baseline < 1):
		return fmt.Errorf("baseline rate %v is outside (0, 1)", p.Baseline)
	case !p.Binary && (!(p.StdDev > 0) || math.IsInf(p.StdDev, 0)):
		return fmt.Errorf("standard deviation %v is not positive", p.StdDev)
	case math.IsNaN(p.Baseline) || math.IsInf(p.Baseline, 0):
		return fmt.Errorf("baseline %v is not finite", p.Baseline)
	}
	return nil
}

// sd returns s for an absolute effect delta.
func (p PowerSpec) sd(delta float64) float64 {
	if p.Binary {
		pt, pc := p.Baseline+delta, p.Baseline
		return math.Sqrt(pt*(1-pt) + pc*(1-pc)/p.Ratio)
	}
	return p.StdDev * math.Sqrt(1+1/p.Ratio)
}

// normalPower is the power of the two-sided z-test when the true effect is
// k standard errors.
func normalPower(k, alpha float64) float64 {
	z := NormalCritical(alpha)
	return 0.5*math.Erfc((z-k)/math.Sqrt2) + 0.5*math.Erfc((z+k)/math.Sqrt2)
}

// Power returns the power to detect the absolute effect delta with n
// treatment users.
func (p PowerSpec) Power(delta, n float64) (float64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	if !(n > 0) || (p.Binary && !(p.Baseline+delta > 0 && p.Baseline+delta < 1)) {
		return 0, fmt.Errorf("effect %v with %v users is out of range", delta, n)
	}
	return normalPower(math.Abs(delta)*math.Sqrt(n)/p.sd(delta), p.Alpha), nil
}

// SampleSize returns the treatment users n (a real number; round it up) that
// give the target power against the absolute effect delta.
func (p PowerSpec) SampleSize(delta, power float64) (float64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	if !(power > p.Alpha && power < 1) {
		return 0, fmt.Errorf("power %v is outside (alpha, 1)", power)
	}
	if delta == 0 || math.IsNaN(delta) || (p.Binary && !(p.Baseline+delta > 0 && p.Baseline+delta < 1)) {
		return 0, fmt.Errorf("effect %v is zero or out of range", delta)
	}
	k := effectSE(power, p.Alpha)
	s := p.sd(delta)
	r := k * s / math.Abs(delta)
	return r * r, nil
}

// MDE returns the smallest absolute effect (positive, an increase over the
// baseline) detected with the target power by n treatment users.
func (p PowerSpec) MDE(n, power float64) (float64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	if !(power > p.Alpha && power < 1) || !(n > 0) {
		return 0, fmt.Errorf("power %v or users %v out of range", power, n)
	}
	k := effectSE(power, p.Alpha)
	if !p.Binary {
		return k * p.sd(0) / math.Sqrt(n), nil
	}
	// δ·√n = k·s(δ): f(δ) = δ√n - k·s(δ) is increasing in δ on (0, 1-pc)
	// wherever it crosses 0; bisect to full precision.
	f := func(d float64) float64 { return d*math.Sqrt(n) - k*p.sd(d) }
	lo, hi := 0.0, 1-p.Baseline
	if f(math.Nextafter(hi, 0)) < 0 {
		return 0, ErrUnreachable
	}
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if f(mid) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2, nil
}

// effectSE returns k, the true effect in standard errors at which the
// two-sided test at alpha has the given power (k ≈ z_{1-alpha/2} + z_power;
// the far tail is included).
func effectSE(power, alpha float64) float64 {
	z := NormalCritical(alpha)
	k := z + NormalCritical(2*(1-power))
	if power < 0.5 {
		k = z - NormalCritical(2*power)
	}
	for range 50 {
		f := normalPower(k, alpha) - power
		df := (math.Exp(-(z-k)*(z-k)/2) - math.Exp(-(z+k)*(z+k)/2)) / math.Sqrt(2*math.Pi)
		step := f / df
		k -= step
		if math.Abs(step) <= 1e-16*math.Abs(k) {
			break
		}
	}
	return k
}

// CurrentMDE returns the absolute effect that a two-sided test at alpha
// detects with the given power when the standard error of the difference is
// se (the comparison's current standard error).
func CurrentMDE(se, alpha, power float64) float64 {
	return effectSE(power, alpha) * se
}
