package stats

import "math"

// RelativeInterval is a confidence interval for the relative lift
// (treatment - control)/|control| of two independent means.
type RelativeInterval struct {
	Lower, Upper float64
	// Bounded is false when the control mean is too uncertain (Fieller's
	// g >= 1): the confidence set is then unbounded and Lower, Upper are NaN.
	Bounded bool
}

// Fieller returns Fieller's confidence interval for the relative lift of
// treatment over control, from the means and the variances of the means
// (squared standard errors) of two independent arms, at critical value crit
// (the same z or t critical value as the absolute test).
//
// The interval is the set of ratios R = mt/mc with
// (mt - R·mc)² <= crit²·(vt + R²·vc); at R = 1 that is exactly the condition
// that the absolute test is not significant, so the interval excludes 0 lift
// if and only if the absolute interval excludes 0. It is unbounded when
// g = crit²·vc/mc² >= 1 (Bounded false), which includes a control mean of 0.
func Fieller(mc, vc, mt, vt, crit float64) RelativeInterval {
	c2 := crit * crit
	a := mc*mc - c2*vc // > 0 iff g < 1
	if !(a > 0) || mc == 0 {
		return RelativeInterval{Lower: math.NaN(), Upper: math.NaN()}
	}
	// Discriminant / c², written as a sum of non-negative terms.
	disc := c2 * (vt*a + mt*mt*vc)
	s := math.Sqrt(disc)
	lo := (mc*mt - s) / a
	hi := (mc*mt + s) / a
	// lift = (R - 1)·sign(mc)
	if mc < 0 {
		lo, hi = 1-hi, 1-lo
	} else {
		lo, hi = lo-1, hi-1
	}
	return RelativeInterval{Lower: lo, Upper: hi, Bounded: true}
}
