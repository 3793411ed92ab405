package experiment

import "time"

// Report is the analysis of one test at one moment: per metric, per variant
// statistics and each treatment's comparison with control, the health checks,
// and the decision.
type Report struct {
	TestID          string           `json:"test_id"`
	TestName        string           `json:"test_name"`
	Status          Status           `json:"status"`
	ConfidenceLevel float64          `json:"confidence_level"`
	MinSampleSize   int64            `json:"min_sample_size"`
	ControlVariant  string           `json:"control_variant_id"`
	PrimaryMetric   string           `json:"primary_metric"`
	Method          string           `json:"method"`
	ComputedAt      time.Time        `json:"computed_at"`
	Assignments     map[string]int64 `json:"assignments"`
	// MultipleComparison is the correction applied to each metric's
	// comparisons with control (holm or benjamini_hochberg).
	MultipleComparison string `json:"multiple_comparison"`
	// The test's verdict (Verdict's fields), repeated at the top for
	// dashboards and older clients.
	WinnerVariantID *string `json:"winner_variant_id"`
	Decision        string  `json:"decision"`
	Reason          string  `json:"reason"`
	// Verdict is the decision block: the winner (or none) and why, as a
	// machine code and in words.
	Verdict Verdict        `json:"verdict"`
	Health  Health         `json:"health"`
	Metrics []MetricReport `json:"metrics"`
}

// Decisions of a metric's analysis and of the test's verdict.
const (
	DecisionWinner             = "winner"
	DecisionNoData             = "no_data"
	DecisionInsufficientSample = "insufficient_sample"
	DecisionNotSignificant     = "not_significant"
	// DecisionSRM withholds the winner: the users per variant do not match
	// the traffic split (sample ratio mismatch).
	DecisionSRM = "srm_detected"
	// DecisionGuardrail withholds the winner: it is significantly worse on
	// a guardrail metric.
	DecisionGuardrail = "guardrail_violation"
)

// Verdict is the test's decision.
type Verdict struct {
	WinnerVariantID *string `json:"winner_variant_id"`
	Code            string  `json:"code"`
	Message         string  `json:"message"`
}

// Health holds the checks that can withhold a winner.
type Health struct {
	// SRM is the sample ratio mismatch check; nil before any assignment.
	SRM *SRMCheck `json:"srm"`
	// GuardrailViolations lists the treatments significantly worse than
	// control on a guardrail metric (raw p-values: guardrails are not
	// corrected for multiple comparisons, which would make them laxer).
	GuardrailViolations []GuardrailViolation `json:"guardrail_violations"`
}

// SRMCheck is Pearson's chi-square goodness-of-fit test of the assigned
// users per variant against the traffic percentages.
type SRMCheck struct {
	ChiSquare        float64            `json:"chi_square"`
	DegreesOfFreedom float64            `json:"degrees_of_freedom"`
	PValue           float64            `json:"p_value"`
	Threshold        float64            `json:"threshold"`
	Detected         bool               `json:"detected"`
	Observed         map[string]int64   `json:"observed"`
	Expected         map[string]float64 `json:"expected"`
	Message          string             `json:"message"`
}

// GuardrailViolation is one treatment significantly worse than control on a
// guardrail metric.
type GuardrailViolation struct {
	Metric    string  `json:"metric"`
	VariantID string  `json:"variant_id"`
	PValue    float64 `json:"p_value"`
	Message   string  `json:"message"`
}

// MetricReport is the analysis of one metric.
type MetricReport struct {
	Metric    string     `json:"metric"`
	Primary   bool       `json:"primary"`
	Type      MetricType `json:"type"`
	Direction Direction  `json:"direction"`
	Role      Role       `json:"role"`
	// Test names the test of the comparisons: welch_t_test or
	// two_proportion_z_test_unpooled.
	Test string `json:"test"`
	// WinsorizePercentile and WinsorizeCap are set when the metric is
	// winsorized: per-user values above WinsorizeCap (that percentile of
	// all users' values) were replaced by it.
	WinsorizePercentile *float64       `json:"winsorize_percentile,omitempty"`
	WinsorizeCap        *float64       `json:"winsorize_cap,omitempty"`
	Variants            []VariantStats `json:"variants"`
	Comparisons         []Comparison   `json:"comparisons"`
	WinnerVariantID     *string        `json:"winner_variant_id"`
	Decision            string         `json:"decision"`
	Reason              string         `json:"reason"`
}

// VariantStats summarises one variant's users for one metric. A user's
// several results are aggregated into one value per user first.
type VariantStats struct {
	VariantID               string   `json:"variant_id"`
	VariantName             string   `json:"variant_name"`
	SampleSize              int64    `json:"sample_size"`
	Conversions             *int64   `json:"conversions,omitempty"`
	MeanValue               *float64 `json:"mean_value"`
	StdDev                  *float64 `json:"std_dev"`
	ConfidenceIntervalLower *float64 `json:"confidence_interval_lower"`
	ConfidenceIntervalUpper *float64 `json:"confidence_interval_upper"`
}

// Comparison is one treatment against control (treatment minus control).
type Comparison struct {
	VariantID               string   `json:"variant_id"`
	ControlVariantID        string   `json:"control_variant_id"`
	AbsoluteDifference      *float64 `json:"absolute_difference"`
	RelativeDifference      *float64 `json:"relative_difference"`
	ConfidenceIntervalLower *float64 `json:"confidence_interval_lower"`
	ConfidenceIntervalUpper *float64 `json:"confidence_interval_upper"`
	// RelativeCI* bound the relative lift by RelativeCIMethod (fieller);
	// null when the interval is unbounded (the control mean is not
	// significantly different from 0).
	RelativeCILower  *float64 `json:"relative_ci_lower"`
	RelativeCIUpper  *float64 `json:"relative_ci_upper"`
	RelativeCIMethod string   `json:"relative_ci_method"`
	TStatistic       *float64 `json:"t_statistic"`
	DegreesOfFreedom *float64 `json:"degrees_of_freedom"`
	ZStatistic       *float64 `json:"z_statistic,omitempty"`
	PValue           *float64 `json:"p_value"`
	PValuePooled     *float64 `json:"p_value_pooled,omitempty"`
	PValueAdjusted   *float64 `json:"p_value_adjusted"`
	Significant      bool     `json:"significant"`
	// SignificantAdjusted is PValueAdjusted < 1 - confidence level; the
	// winner is decided on it.
	SignificantAdjusted bool `json:"significant_adjusted"`
	// Better is true when the difference goes in the metric's direction.
	Better *bool `json:"better"`
	// MinimumDetectableEffect is the absolute effect that the current
	// sample detects with 80% power at the confidence level.
	MinimumDetectableEffect *float64 `json:"minimum_detectable_effect"`
	// UsersStillNeeded is how many more users the two variants need to
	// reach min_sample_size each.
	UsersStillNeeded int64  `json:"users_still_needed"`
	Note             string `json:"note,omitempty"`
}
