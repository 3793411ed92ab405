package experiment

import "time"

// Report is the analysis of one test at one moment: per metric, per variant
// statistics and each treatment's comparison with control.
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
	// The primary metric's verdict, repeated at the top for dashboards.
	WinnerVariantID *string        `json:"winner_variant_id"`
	Decision        string         `json:"decision"`
	Reason          string         `json:"reason"`
	Metrics         []MetricReport `json:"metrics"`
}

// Decisions of a metric's analysis.
const (
	DecisionWinner             = "winner"
	DecisionNoData             = "no_data"
	DecisionInsufficientSample = "insufficient_sample"
	DecisionNotSignificant     = "not_significant"
)

// MetricReport is the analysis of one metric.
type MetricReport struct {
	Metric          string         `json:"metric"`
	Primary         bool           `json:"primary"`
	Variants        []VariantStats `json:"variants"`
	Comparisons     []Comparison   `json:"comparisons"`
	WinnerVariantID *string        `json:"winner_variant_id"`
	Decision        string         `json:"decision"`
	Reason          string         `json:"reason"`
}

// VariantStats summarises one variant's users for one metric. A user's
// several results are averaged into one value per user first.
type VariantStats struct {
	VariantID               string   `json:"variant_id"`
	VariantName             string   `json:"variant_name"`
	SampleSize              int64    `json:"sample_size"`
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
	TStatistic              *float64 `json:"t_statistic"`
	DegreesOfFreedom        *float64 `json:"degrees_of_freedom"`
	PValue                  *float64 `json:"p_value"`
	Significant             bool     `json:"significant"`
	Note                    string   `json:"note,omitempty"`
}
