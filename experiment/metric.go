package experiment

import (
	"fmt"
	"math"
)

// MetricType says how a metric's results are aggregated per user and tested.
type MetricType string

// The metric types.
const (
	// MetricContinuous: a user's value is the mean of their results; users
	// without a result are left out; Welch's t-test.
	MetricContinuous MetricType = "continuous"
	// MetricBinary: a user's value is 1 when any of their results is
	// non-zero, else 0; assigned users without a result count as 0; the
	// two-proportion z-test.
	MetricBinary MetricType = "binary"
	// MetricRatio: the ratio of two recorded metrics (revenue per session),
	// Numerator over Denominator. A user's numerator and denominator are the
	// sums of their results of those metrics; the users are those with a
	// result of either. The delta method gives the variance, with the
	// numerator-denominator covariance.
	MetricRatio MetricType = "ratio"
)

// Direction is which way a metric improves.
type Direction string

// The directions.
const (
	DirectionIncrease Direction = "increase"
	DirectionDecrease Direction = "decrease"
)

// Role is what a metric does in the decision.
type Role string

// The roles.
const (
	// RolePrimary decides the winner; a test has exactly one primary metric.
	RolePrimary Role = "primary"
	// RoleSecondary is reported only.
	RoleSecondary Role = "secondary"
	// RoleGuardrail withholds the winner when the winning variant is
	// significantly worse on it.
	RoleGuardrail Role = "guardrail"
)

// Multiple-comparison corrections a test may choose.
const (
	CorrectionHolm              = "holm"
	CorrectionBenjaminiHochberg = "benjamini_hochberg"
)

// Metric declares how one metric is analysed.
type Metric struct {
	Name      string     `json:"name"`
	Type      MetricType `json:"type"`
	Direction Direction  `json:"direction"`
	Role      Role       `json:"role"`
	// WinsorizePercentile, when set (in (50, 100)), caps every user's value
	// at that percentile of the users' values (all variants pooled) before
	// the test. Continuous metrics only.
	WinsorizePercentile *float64 `json:"winsorize_percentile,omitempty"`
	// Numerator and Denominator name the recorded metrics of a ratio
	// metric (type ratio only).
	Numerator   string `json:"numerator,omitempty"`
	Denominator string `json:"denominator,omitempty"`
	// NonInferiorityMargin, on a guardrail, is the loss in the metric's
	// direction that still counts as "not worse": a fraction of the control
	// mean (0.02 is 2%) when NonInferiorityMarginType is relative (the
	// default), in metric units when it is absolute. A guardrail with a
	// margin withholds the winner unless the winner is shown not worse by
	// more than the margin (one-sided test at 1 - confidence_level).
	NonInferiorityMargin     *float64 `json:"non_inferiority_margin,omitempty"`
	NonInferiorityMarginType string   `json:"non_inferiority_margin_type,omitempty"`
}

// Non-inferiority margin types.
const (
	MarginRelative = "relative"
	MarginAbsolute = "absolute"
)

// MetricSpec returns the declaration of metric name: the declared one, or
// the default for an undeclared metric (continuous, increase, secondary;
// primary for the primary metric).
func (t *Test) MetricSpec(name string) Metric {
	for _, m := range t.Metrics {
		if m.Name == name {
			return m
		}
	}
	m := Metric{Name: name, Type: MetricContinuous, Direction: DirectionIncrease, Role: RoleSecondary}
	if name == t.PrimaryMetric {
		m.Role = RolePrimary
	}
	return m
}

// Correction returns the test's multiple-comparison correction.
func (t *Test) Correction() string {
	if t.MultipleComparison == "" {
		return CorrectionHolm
	}
	return t.MultipleComparison
}

// setMetricDefaults fills omitted fields of the declarations and names the
// primary metric from them when primary_metric is omitted.
func (t *Test) setMetricDefaults() {
	for i := range t.Metrics {
		m := &t.Metrics[i]
		if m.Type == "" {
			m.Type = MetricContinuous
		}
		if m.Direction == "" {
			m.Direction = DirectionIncrease
		}
		if m.Role == "" {
			m.Role = RoleSecondary
			if m.Name == t.PrimaryMetric && t.PrimaryMetric != "" {
				m.Role = RolePrimary
			}
		}
		if t.PrimaryMetric == "" && m.Role == RolePrimary {
			t.PrimaryMetric = m.Name
		}
	}
}

// validateMetrics checks the declarations against each other and against
// primary_metric.
func (t *Test) validateMetrics() error {
	if len(t.Metrics) > 100 {
		return Invalid("metrics", "has more than 100 metrics")
	}
	switch t.MultipleComparison {
	case "", CorrectionHolm, CorrectionBenjaminiHochberg:
	default:
		return Invalid("multiple_comparison", "must be holm or benjamini_hochberg")
	}
	seen := make(map[string]bool, len(t.Metrics))
	for i, m := range t.Metrics {
		field := fmt.Sprintf("metrics[%d]", i)
		switch {
		case !ValidID(m.Name):
			return Invalid(field+".name", "is required and must match %s (at most %d bytes)", idPattern, MaxIDLength)
		case seen[m.Name]:
			return Invalid(field+".name", "duplicates metric %q", m.Name)
		case m.Type != MetricContinuous && m.Type != MetricBinary && m.Type != MetricRatio:
			return Invalid(field+".type", "must be continuous, binary or ratio")
		case m.Direction != DirectionIncrease && m.Direction != DirectionDecrease:
			return Invalid(field+".direction", "must be increase or decrease")
		case m.Role != RolePrimary && m.Role != RoleSecondary && m.Role != RoleGuardrail:
			return Invalid(field+".role", "must be primary, secondary or guardrail")
		case m.Role == RolePrimary && m.Name != t.PrimaryMetric:
			return Invalid(field+".role", "is primary but primary_metric is %q", t.PrimaryMetric)
		case m.Role != RolePrimary && m.Name == t.PrimaryMetric:
			return Invalid(field+".role", "must be primary for the primary metric %q", t.PrimaryMetric)
		}
		if p := m.WinsorizePercentile; p != nil {
			if m.Type != MetricContinuous {
				return Invalid(field+".winsorize_percentile", "applies to continuous metrics only")
			}
			if math.IsNaN(*p) || *p <= 50 || *p >= 100 {
				return Invalid(field+".winsorize_percentile", "must be in (50, 100), e.g. 99")
			}
		}
		if err := m.validateOptions(field); err != nil {
			return err
		}
		seen[m.Name] = true
	}
	return t.validateRatios()
}
