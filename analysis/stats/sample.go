package stats

import (
	"fmt"
	"math"
)

// Sample holds the sufficient statistics of one arm over users: N users, the
// mean, and the unbiased (n-1) sample variance.
type Sample struct {
	N        int64
	Mean     float64
	Variance float64
}

// MeanInterval returns the two-sided Student-t confidence interval of s.Mean
// at the given level (e.g. 0.95), with N-1 degrees of freedom:
// Mean ∓ t_{1-(1-level)/2, N-1}·sqrt(Variance/N).
//
// It returns ErrInsufficientData when N < 2. Zero variance gives
// lo == hi == Mean.
func MeanInterval(s Sample, level float64) (lo, hi float64, err error) {
	if err := checkLevel(level); err != nil {
		return 0, 0, err
	}
	if err := s.check(); err != nil {
		return 0, 0, err
	}
	se := math.Sqrt(s.Variance / float64(s.N))
	if se == 0 {
		return s.Mean, s.Mean, nil
	}
	h := studentT{nu: float64(s.N - 1)}.critical(1-level) * se
	return s.Mean - h, s.Mean + h, nil
}

// check reports whether s can enter a computation.
func (s Sample) check() error {
	switch {
	case s.N < 0:
		return fmt.Errorf("user count %d is negative", s.N)
	case s.N < 2:
		return fmt.Errorf("n = %d: %w", s.N, ErrInsufficientData)
	case math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0):
		return fmt.Errorf("mean %v is not finite", s.Mean)
	case !(s.Variance >= 0) || math.IsInf(s.Variance, 1):
		return fmt.Errorf("variance %v is negative or not finite", s.Variance)
	}
	return nil
}

// checkLevel reports whether level is a usable confidence level.
func checkLevel(level float64) error {
	if !(level > 0 && level < 1) {
		return fmt.Errorf("confidence level %v is outside (0, 1)", level)
	}
	return nil
}

// Combine returns the Sample of the union of two disjoint groups of users,
// from their Samples alone (Chan, Golub and LeVeque's pairwise update):
// the mean is the N-weighted mean, and the sum of squared deviations is
// the two groups' sums plus δ²·n_a·n_b/n, δ the difference of their means.
func Combine(a, b Sample) Sample {
	switch {
	case a.N == 0:
		return b
	case b.N == 0:
		return a
	}
	na, nb := float64(a.N), float64(b.N)
	n := na + nb
	delta := b.Mean - a.Mean
	out := Sample{N: a.N + b.N, Mean: a.Mean + delta*nb/n}
	m2 := a.Variance*(na-1) + b.Variance*(nb-1) + delta*delta*na*nb/n
	out.Variance = max(0, m2/(n-1))
	return out
}
