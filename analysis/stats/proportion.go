package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Proportion holds a binary metric's sufficient statistics for one arm:
// N users, of whom Successes converted.
type Proportion struct {
	N         int64
	Successes int64
}

// Rate returns Successes/N, or 0 for an empty arm.
func (p Proportion) Rate() float64 {
	if p.N == 0 {
		return 0
	}
	return float64(p.Successes) / float64(p.N)
}

func (p Proportion) check() error {
	switch {
	case p.N < 0 || p.Successes < 0:
		return fmt.Errorf("counts %d of %d are negative", p.Successes, p.N)
	case p.Successes > p.N:
		return fmt.Errorf("successes %d exceed users %d", p.Successes, p.N)
	case p.N < 1:
		return fmt.Errorf("n = %d: %w", p.N, ErrInsufficientData)
	}
	return nil
}

// ZTest is the result of a two-proportion z-test of treatment minus control.
type ZTest struct {
	Diff    float64 // treatment rate - control rate
	StdErr  float64 // unpooled: sqrt(pc(1-pc)/nc + pt(1-pt)/nt)
	Z       float64 // Diff / StdErr
	PValue  float64 // two-sided, from Z
	CILower float64 // Diff - z_{1-(1-level)/2}·StdErr (Wald)
	CIUpper float64 // Diff + z_{1-(1-level)/2}·StdErr
	// The pooled statistic of statsmodels' proportions_ztest (variance
	// p(1-p)(1/nc+1/nt) with the pooled rate p), for reference. Both are NaN
	// when every user of both arms has the same outcome.
	ZPooled      float64
	PValuePooled float64
}

// TwoProportionZTest compares two conversion rates. The test statistic and
// the interval use the unpooled (Wald) variance, as statsmodels'
// test_proportions_2indep(method="wald") and
// confint_proportions_2indep(method="wald") do, so that the p-value, the
// interval of the difference and the Fieller interval of the ratio always
// agree on significance. The pooled statistic of proportions_ztest is
// reported alongside.
//
// It returns ErrInsufficientData when an arm has no users and
// ErrZeroVariance when the unpooled standard error is 0 (both arms all-0 or
// all-1).
func TwoProportionZTest(control, treatment Proportion, level float64) (ZTest, error) {
	if err := checkLevel(level); err != nil {
		return ZTest{}, err
	}
	if err := control.check(); err != nil {
		return ZTest{}, fmt.Errorf("control arm: %w", err)
	}
	if err := treatment.check(); err != nil {
		return ZTest{}, fmt.Errorf("treatment arm: %w", err)
	}
	nc, nt := float64(control.N), float64(treatment.N)
	pc, pt := control.Rate(), treatment.Rate()
	se := math.Sqrt(pc*(1-pc)/nc + pt*(1-pt)/nt)
	if se == 0 {
		return ZTest{}, ErrZeroVariance
	}
	diff := pt - pc
	z := diff / se
	h := NormalCritical(1-level) * se
	r := ZTest{Diff: diff, StdErr: se, Z: z, PValue: NormalTwoTail(z), CILower: diff - h, CIUpper: diff + h}
	pool := float64(control.Successes+treatment.Successes) / (nc + nt)
	sp := math.Sqrt(pool * (1 - pool) * (1/nc + 1/nt))
	r.ZPooled = diff / sp
	r.PValuePooled = NormalTwoTail(r.ZPooled)
	return r, nil
}

// NormalTwoTail returns P(|Z| >= |z|) for a standard normal Z.
func NormalTwoTail(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// NormalCritical returns c > 0 with P(|Z| >= c) = alpha, for 0 < alpha < 1.
func NormalCritical(alpha float64) float64 {
	c := -distuv.UnitNormal.Quantile(alpha / 2)
	// One Newton step on the accurate erfc tail polishes the quantile.
	for range 2 {
		pdf := math.Exp(-c*c/2) / math.Sqrt(2*math.Pi)
		c += (NormalTwoTail(c) - alpha) / (2 * pdf)
	}
	return c
}
