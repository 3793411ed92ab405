package stats

import (
	"fmt"

	"gonum.org/v1/gonum/stat/distuv"
)

// GoodnessOfFit is Pearson's chi-square goodness-of-fit test.
type GoodnessOfFit struct {
	ChiSquare float64
	DoF       float64
	PValue    float64
	Expected  []float64
}

// ChiSquareGOF tests observed counts against the expected shares weights
// (any positive scale, e.g. traffic percentages), as scipy.stats.chisquare
// does with f_exp = total·weight/sum(weights). It is the sample ratio
// mismatch test. It needs at least two categories and one observation.
func ChiSquareGOF(observed []int64, weights []float64) (GoodnessOfFit, error) {
	if len(observed) != len(weights) || len(observed) < 2 {
		return GoodnessOfFit{}, fmt.Errorf("%d counts for %d weights: want the same number, at least 2", len(observed), len(weights))
	}
	var total, wsum float64
	for i, o := range observed {
		if o < 0 || !(weights[i] > 0) {
			return GoodnessOfFit{}, fmt.Errorf("count %d or weight %v is not usable", o, weights[i])
		}
		total += float64(o)
		wsum += weights[i]
	}
	if total == 0 {
		return GoodnessOfFit{}, ErrInsufficientData
	}
	g := GoodnessOfFit{DoF: float64(len(observed) - 1), Expected: make([]float64, len(observed))}
	for i, o := range observed {
		e := total * weights[i] / wsum
		d := float64(o) - e
		g.ChiSquare += d * d / e
		g.Expected[i] = e
	}
	g.PValue = distuv.ChiSquared{K: g.DoF}.Survival(g.ChiSquare)
	return g, nil
}
