// Package statstest holds what the tests of analysis and analysis/stats
// share: the one near-equality check of a result against its reference, and
// the per-user moments that serve as a test's oracle (production reads them
// from ClickHouse aggregates). Only tests import it.
package statstest

import (
	"math"

	"gonum.org/v1/gonum/floats/scalar"
)

// RelTol is the agreement the README promises with the SciPy and
// statsmodels references: 1e-9 relative.
const RelTol = 1e-9

// absTol lets scalar.EqualWithinAbsOrRel settle values that agree to the
// last bits; Close then also demands RelTol.
const absTol = 1e-12

// Close reports whether got agrees with the reference want to RelTol,
// relative to want: |got - want| <= RelTol·|want| (so a zero want needs a
// zero got). On top of scalar.EqualWithinAbsOrRel(got, want, 1e-12, RelTol)
// it requires the relative bound for every non-zero want: the absolute
// tolerance alone would accept any p-value below 1e-12, and tiny p-values
// are the point of several cases. (scalar.EqualWithinRel cannot serve: it
// compares differences below the smallest normal float64 absolutely, so it
// rejects p-values near 1e-299 that agree to 1e-13.)
func Close(got, want float64) bool {
	return scalar.EqualWithinAbsOrRel(got, want, absTol, RelTol) &&
		math.Abs(got-want) <= RelTol*math.Abs(want)
}

// ClosePtr is Close for a reported number that may be missing (nil never
// matches).
func ClosePtr(got *float64, want float64) bool {
	return got != nil && Close(*got, want)
}

// Moments returns the number of values in xs, their mean and their unbiased
// (n-1) sample variance, as ClickHouse's count, avg and varSampStable give them
// per variant.
//
// It uses the corrected two-pass algorithm (Chan, Golub and LeVeque, 1983):
// the mean first, then the sum of squared deviations minus a term that
// cancels the rounding error of the mean. For fewer than two values the
// variance is 0 (the sample variance is undefined there), and for no values
// the mean is also 0.
func Moments(xs []float64) (n int64, mean, variance float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	fn := float64(len(xs))
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean = sum / fn
	var ss, comp float64
	for _, x := range xs {
		d := x - mean
		ss += d * d
		comp += d
	}
	if len(xs) > 1 {
		variance = max(0, (ss-comp*comp/fn)/(fn-1))
	}
	return int64(len(xs)), mean + comp/fn, variance
}
