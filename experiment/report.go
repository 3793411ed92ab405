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
	// AnalysisMethod is the test's: fixed_horizon or sequential (then
	// SequentialTuningN is the N* of the confidence sequences, and the
	// decision and the SRM check use the always-valid results).
	AnalysisMethod    string `json:"analysis_method"`
	SequentialTuningN *int64 `json:"sequential_tuning_n,omitempty"`
	// The test's verdict (Verdict's fields), repeated at the top for
	// dashboards and older clients.
	WinnerVariantID *string `json:"winner_variant_id"`
	Decision        string  `json:"decision"`
	Reason          string  `json:"reason"`
	// PValue and VariantResults repeat the primary metric's results at the
	// top, in the seed's shape, for clients written against it. PValue is
	// the p-value the decision reads: the winner's adjusted p-value (the
	// always-valid one for a sequential test), else the smallest adjusted
	// one among the treatments; with two variants it is the comparison's
	// p-value (an adjustment of one comparison changes nothing). Nil when
	// no comparison has one.
	PValue         *float64        `json:"p_value"`
	VariantResults []VariantResult `json:"variant_results"`
	// Verdict is the decision block: the winner (or none) and why, as a
	// machine code and in words.
	Verdict Verdict        `json:"verdict"`
	Health  Health         `json:"health"`
	Metrics []MetricReport `json:"metrics"`
	// Segments holds the primary metric by segment, one entry per declared
	// segment attribute.
	Segments []SegmentReport `json:"segments,omitempty"`
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
	// DecisionNonInferiority withholds the winner: a guardrail with a
	// non-inferiority margin does not show it not worse than the margin.
	DecisionNonInferiority = "non_inferiority_not_shown"
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
	// NonInferiorityNotShown lists the treatments that a guardrail with a
	// non_inferiority_margin does not show not worse than the margin (the
	// one-sided test's p-value is in PValue).
	NonInferiorityNotShown []GuardrailViolation `json:"non_inferiority_not_shown"`
}

// SRMCheck is Pearson's chi-square goodness-of-fit test of the assigned
// users per variant against the traffic percentages.
type SRMCheck struct {
	// Method is chi_square, or for a sequential test
	// sequential_bayes_factor (Lindon and Malek's Dirichlet-multinomial
	// test, valid under continuous monitoring): PValue is that method's.
	Method string `json:"method"`
	// LogBayesFactor (sequential only) is the log Bayes factor against the
	// configured split; PValue = min(1, 1/BayesFactor).
	LogBayesFactor *float64 `json:"log_bayes_factor,omitempty"`
	// ChiSquarePValue (sequential only) is the fixed-horizon chi-square
	// p-value, for reference.
	ChiSquarePValue  *float64           `json:"chi_square_p_value,omitempty"`
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
	WinsorizePercentile *float64 `json:"winsorize_percentile,omitempty"`
	WinsorizeCap        *float64 `json:"winsorize_cap,omitempty"`
	// Numerator and Denominator name a ratio metric's recorded metrics.
	Numerator   string `json:"numerator,omitempty"`
	Denominator string `json:"denominator,omitempty"`
	// NonInferiorityMargin and its type, as declared on a guardrail.
	NonInferiorityMargin     *float64       `json:"non_inferiority_margin,omitempty"`
	NonInferiorityMarginType string         `json:"non_inferiority_margin_type,omitempty"`
	Variants                 []VariantStats `json:"variants"`
	Comparisons              []Comparison   `json:"comparisons"`
	WinnerVariantID          *string        `json:"winner_variant_id"`
	Decision                 string         `json:"decision"`
	Reason                   string         `json:"reason"`
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
	// Ratio holds a ratio metric's per-user moments (MeanValue is then the
	// ratio of the means, StdDev the standard error of the ratio times
	// sqrt(n)).
	Ratio *RatioStats `json:"ratio,omitempty"`
}

// VariantResult is a variant's row of the primary metric at the top of the
// report: its statistics and, for a treatment, its comparison's p-value
// against control (the decision's: adjusted, always-valid when sequential).
type VariantResult struct {
	VariantStats
	PValue *float64 `json:"p_value,omitempty"`
}

// RatioStats are one arm's moments of a ratio metric over users.
type RatioStats struct {
	NumeratorMean       float64 `json:"numerator_mean"`
	DenominatorMean     float64 `json:"denominator_mean"`
	NumeratorVariance   float64 `json:"numerator_variance"`
	DenominatorVariance float64 `json:"denominator_variance"`
	Covariance          float64 `json:"covariance"`
	// RatioVariance is the delta-method variance of the ratio estimate.
	RatioVariance *float64 `json:"ratio_variance"`
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

	// Sequential holds the always-valid results (sequential tests only).
	Sequential *SequentialResult `json:"sequential,omitempty"`
	// Bayesian holds the posterior (tests with bayesian.enabled only).
	Bayesian *BayesianResult `json:"bayesian,omitempty"`
	// NonInferiority holds the one-sided test of a guardrail's margin.
	NonInferiority *NonInferiorityResult `json:"non_inferiority,omitempty"`
	// CUPED reports the covariate adjustment when one was applied: the
	// comparison's differences, intervals and p-values are then those of
	// the adjusted estimate.
	CUPED *CUPEDResult `json:"cuped,omitempty"`
}

// SequentialResult is one look of the sequential test of a comparison.
type SequentialResult struct {
	// Method is asymptotic_confidence_sequence (Waudby-Smith et al., the
	// normal-mixture mSPRT of Johari et al.).
	Method  string `json:"method"`
	TuningN int64  `json:"tuning_n"`
	// ConfidenceSequence* bound the difference at the confidence level,
	// valid whenever it is looked at.
	ConfidenceSequenceLower *float64 `json:"confidence_sequence_lower"`
	ConfidenceSequenceUpper *float64 `json:"confidence_sequence_upper"`
	// PValue is always valid; PValueAdjusted is corrected over the
	// metric's comparisons as the fixed-horizon one.
	PValue              *float64 `json:"p_value"`
	PValueAdjusted      *float64 `json:"p_value_adjusted"`
	Significant         bool     `json:"significant"`
	SignificantAdjusted bool     `json:"significant_adjusted"`
	Note                string   `json:"note,omitempty"`
}

// BayesianResult is the Gaussian posterior of a comparison's relative lift.
type BayesianResult struct {
	// Effect is relative: (treatment - control)/|control|.
	Effect string `json:"effect"`
	// Prior is "flat" or {mean, sd}.
	Prior                 Prior    `json:"prior"`
	PosteriorMean         *float64 `json:"posterior_mean"`
	PosteriorStdDev       *float64 `json:"posterior_std_dev"`
	CredibleIntervalLower *float64 `json:"credible_interval_lower"`
	CredibleIntervalUpper *float64 `json:"credible_interval_upper"`
	// ChanceToBeatControl is P(treatment better than control in the
	// metric's direction).
	ChanceToBeatControl *float64 `json:"chance_to_beat_control"`
	// RiskTreatment is the expected loss of shipping treatment and
	// RiskControl that of keeping control, in relative-lift units.
	RiskTreatment *float64 `json:"risk_treatment"`
	RiskControl   *float64 `json:"risk_control"`
	RiskThreshold float64  `json:"risk_threshold"`
	// Decision is ship_treatment, keep_control or keep_running.
	Decision string `json:"decision"`
	Message  string `json:"message"`
}

// NonInferiorityResult is the one-sided test that treatment is not worse
// than control by more than the margin, in the metric's direction.
type NonInferiorityResult struct {
	Margin     float64 `json:"margin"`
	MarginType string  `json:"margin_type"`
	// AbsoluteMargin is the margin in metric units (a relative margin times
	// |control mean|).
	AbsoluteMargin *float64 `json:"absolute_margin"`
	// Test is welch_t_test_one_sided or z_test_one_sided.
	Test      string   `json:"test"`
	Alpha     float64  `json:"alpha"`
	Statistic *float64 `json:"statistic"`
	PValue    *float64 `json:"p_value"`
	// Bound is the one-sided 1-alpha confidence bound of the difference on
	// the side of harm.
	Bound    *float64 `json:"bound"`
	NotWorse bool     `json:"not_worse"`
	Message  string   `json:"message"`
}

// CUPEDResult reports a CUPED adjustment.
type CUPEDResult struct {
	// Source is covariates (recorded with the results) or lookback (the
	// same metric in other tests before this one started).
	Source             string  `json:"source"`
	Lookback           string  `json:"lookback,omitempty"`
	UsersWithCovariate int64   `json:"users_with_covariate"`
	Theta              float64 `json:"theta"`
	// VarianceReduction is the share of the variance of the difference
	// removed by the adjustment.
	VarianceReduction     float64  `json:"variance_reduction"`
	UnadjustedDifference  *float64 `json:"unadjusted_difference"`
	UnadjustedCILower     *float64 `json:"unadjusted_ci_lower"`
	UnadjustedCIUpper     *float64 `json:"unadjusted_ci_upper"`
	UnadjustedPValue      *float64 `json:"unadjusted_p_value"`
	AdjustedControlMean   *float64 `json:"adjusted_control_mean"`
	AdjustedTreatmentMean *float64 `json:"adjusted_treatment_mean"`
	Note                  string   `json:"note,omitempty"`
}

// SegmentReport is the primary metric by the values of one attribute.
type SegmentReport struct {
	Attribute string `json:"attribute"`
	Metric    string `json:"metric"`
	// Segments lists the attribute's values (users without it are in
	// "(none)", values beyond the largest ones in "(other)"). Their
	// comparisons' adjusted p-values are corrected over every segment and
	// treatment of the attribute.
	Segments []SegmentResult `json:"segments"`
	// Heterogeneity scans, per treatment, for segments whose effect
	// differs from the rest.
	Heterogeneity []HeterogeneityScan `json:"heterogeneity"`
	// Note says why there are no segments (a ratio primary metric).
	Note string `json:"note,omitempty"`
}

// SegmentResult is one segment's analysis.
type SegmentResult struct {
	Value       string         `json:"value"`
	Variants    []VariantStats `json:"variants"`
	Comparisons []Comparison   `json:"comparisons"`
}

// HeterogeneityScan tests whether one treatment's effect differs across the
// segments of an attribute: Cochran's Q over all, and each segment against
// the pooled rest with p-values corrected over the segments.
type HeterogeneityScan struct {
	VariantID string                 `json:"variant_id"`
	Pooled    *float64               `json:"pooled_effect"`
	Q         *float64               `json:"q"`
	DoF       *float64               `json:"degrees_of_freedom"`
	QPValue   *float64               `json:"q_p_value"`
	I2        *float64               `json:"i_squared"`
	Flagged   []string               `json:"flagged"`
	Segments  []SegmentHeterogeneity `json:"segments"`
	Note      string                 `json:"note,omitempty"`
}

// SegmentHeterogeneity compares one segment's effect with the rest's.
type SegmentHeterogeneity struct {
	Value          string  `json:"value"`
	Effect         float64 `json:"effect"`
	StdErr         float64 `json:"std_err"`
	Rest           float64 `json:"rest_effect"`
	Difference     float64 `json:"difference"`
	Z              float64 `json:"z"`
	PValue         float64 `json:"p_value"`
	PValueAdjusted float64 `json:"p_value_adjusted"`
	Flagged        bool    `json:"flagged"`
}
