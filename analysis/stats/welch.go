package stats

import (
	"fmt"
	"math"
)

// Welch is the result of Welch's unequal-variance t-test of treatment minus
// control.
type Welch struct {
	Diff    float64 // treatment.Mean - control.Mean
	StdErr  float64 // sqrt(vc/nc + vt/nt)
	T       float64 // Diff / StdErr
	DoF     float64 // Welch–Satterthwaite degrees of freedom
	PValue  float64 // two-sided, P(|T_DoF| >= |T|)
	CILower float64 // Diff - t_{1-(1-level)/2, DoF}·StdErr
	CIUpper float64 // Diff + t_{1-(1-level)/2, DoF}·StdErr
	// Critical is t_{1-(1-level)/2, DoF}, for intervals that must agree
	// with this test (Fieller's interval of the relative lift).
	Critical float64
}

// WelchTTest compares treatment with control by Welch's t-test and returns
// the difference of means with its two-sided p-value and its confidence
// interval at level, which must be in (0, 1).
//
// It returns ErrInsufficientData when an arm has fewer than two users and
// ErrZeroVariance when both arms have zero variance; the Welch value is then
// the zero value.
func WelchTTest(control, treatment Sample, level float64) (Welch, error) {
	if err := checkLevel(level); err != nil {
		return Welch{}, err
	}
	if err := control.check(); err != nil {
		return Welch{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return Welch{}, fmt.Errorf("treatment arm: %w", err)
	}

	vc := control.Variance / float64(control.N)
	vt := treatment.Variance / float64(treatment.N)
	se2 := vc + vt
	switch {
	case se2 == 0:
		return Welch{}, ErrZeroVariance
	case math.IsInf(se2, 1):
		return Welch{}, fmt.Errorf("standard error of the difference overflows: %v + %v", vc, vt)
	}
	se := math.Sqrt(se2)
	diff := treatment.Mean - control.Mean
	t := diff / se

	// Welch–Satterthwaite, written with the shares of se2 so that tiny
	// variances cannot underflow to 0/0: (vc+vt)² / (vc²/(nc-1) + vt²/(nt-1)).
	rc, rt := vc/se2, vt/se2
	dof := 1 / (rc*rc/float64(control.N-1) + rt*rt/float64(treatment.N-1))

	d := studentT{nu: dof}
	crit := d.critical(1 - level)
	h := crit * se
	return Welch{
		Critical: crit,
		Diff:     diff,
		StdErr:   se,
		T:        t,
		DoF:      dof,
		PValue:   d.twoTail(t),
		CILower:  diff - h,
		CIUpper:  diff + h,
	}, nil
}
