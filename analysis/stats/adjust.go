package stats

import (
	"fmt"
	"math"
	"sort"
)

// Multiple-comparison corrections of a family of p-values.
const (
	CorrectionHolm              = "holm"
	CorrectionBenjaminiHochberg = "benjamini_hochberg"
)

// AdjustPValues returns the p-values of ps adjusted for multiple comparisons
// by method (CorrectionHolm or CorrectionBenjaminiHochberg), in the order of
// ps. They match statsmodels' multipletests(method="holm") and
// multipletests(method="fdr_bh"). NaN entries (comparisons without a test)
// are left out of the family and stay NaN.
func AdjustPValues(ps []float64, method string) ([]float64, error) {
	out := make([]float64, len(ps))
	idx := make([]int, 0, len(ps))
	for i, p := range ps {
		out[i] = math.NaN()
		if math.IsNaN(p) {
			continue
		}
		if p < 0 || p > 1 {
			return nil, fmt.Errorf("p-value %v is outside [0, 1]", p)
		}
		idx = append(idx, i)
	}
	sort.SliceStable(idx, func(a, b int) bool { return ps[idx[a]] < ps[idx[b]] })
	m := float64(len(idx))
	switch method {
	case CorrectionHolm:
		running := 0.0
		for k, i := range idx {
			running = math.Max(running, math.Min(1, (m-float64(k))*ps[i]))
			out[i] = running
		}
	case CorrectionBenjaminiHochberg:
		running := 1.0
		for k := len(idx) - 1; k >= 0; k-- {
			i := idx[k]
			running = math.Min(running, math.Min(1, m/float64(k+1)*ps[i]))
			out[i] = running
		}
	default:
		return nil, fmt.Errorf("unknown correction %q", method)
	}
	return out, nil
}
