package stats

import "fmt"

// Direction says which way a metric improves. Decisions that have a side
// (chance to win, risk, non-inferiority) use it; two-sided tests do not.
type Direction int

const (
	// HigherIsBetter is the direction of conversion, revenue or retention.
	HigherIsBetter Direction = iota
	// LowerIsBetter is the direction of latency, errors or churn.
	LowerIsBetter
)

// sign returns +1 for HigherIsBetter and -1 for LowerIsBetter: the factor
// that turns an effect (treatment minus control) into a gain.
func (d Direction) sign() float64 {
	if d == LowerIsBetter {
		return -1
	}
	return 1
}

func (d Direction) check() error {
	if d != HigherIsBetter && d != LowerIsBetter {
		return fmt.Errorf("unknown metric direction %d", int(d))
	}
	return nil
}

// String returns "higher_is_better" or "lower_is_better".
func (d Direction) String() string {
	switch d {
	case HigherIsBetter:
		return "higher_is_better"
	case LowerIsBetter:
		return "lower_is_better"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}
