package experiment

// Analysis methods a test may choose.
const (
	// MethodFixedHorizon analyses the test once, at its planned size: the
	// p-values and intervals are valid for one look only.
	MethodFixedHorizon = "fixed_horizon"
	// MethodSequential adds always-valid p-values and confidence sequences,
	// safe to look at after every batch of users, and decides on them.
	MethodSequential = "sequential"
)

// Defaults and limits of the sequential analysis.
const (
	// DefaultSequentialTuningN is N*, the total users (all arms of a
	// comparison) at which the confidence sequence is tuned to be tightest
	// (GrowthBook's default).
	DefaultSequentialTuningN = 5000
	MinSequentialTuningN     = 100
	MaxSequentialTuningN     = 1_000_000_000
)

// Method returns the test's analysis method.
func (t *Test) Method() string {
	if t.AnalysisMethod == "" {
		return MethodFixedHorizon
	}
	return t.AnalysisMethod
}

// Sequential reports whether the test decides on always-valid results.
func (t *Test) Sequential() bool { return t.Method() == MethodSequential }

// TuningN returns N* of the sequential analysis.
func (t *Test) TuningN() int64 {
	if t.SequentialTuningN == 0 {
		return DefaultSequentialTuningN
	}
	return t.SequentialTuningN
}

// setMethodDefaults fills the analysis method and, for a sequential test,
// N*.
func (t *Test) setMethodDefaults() {
	if t.AnalysisMethod == "" {
		t.AnalysisMethod = MethodFixedHorizon
	}
	if t.AnalysisMethod == MethodSequential && t.SequentialTuningN == 0 {
		t.SequentialTuningN = DefaultSequentialTuningN
	}
}

// validateMethod checks the analysis method and N*.
func (t *Test) validateMethod() error {
	switch t.AnalysisMethod {
	case "", MethodFixedHorizon:
		if t.SequentialTuningN != 0 {
			return Invalid("sequential_tuning_n", "applies only when analysis_method is sequential")
		}
	case MethodSequential:
		if n := t.SequentialTuningN; n != 0 && (n < MinSequentialTuningN || n > MaxSequentialTuningN) {
			return Invalid("sequential_tuning_n", "must be in [%d, %d] (total users at which the confidence sequence is tightest)", MinSequentialTuningN, MaxSequentialTuningN)
		}
	default:
		return Invalid("analysis_method", "must be fixed_horizon or sequential")
	}
	return nil
}
