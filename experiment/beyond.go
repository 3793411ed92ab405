package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Analysis methods a test may choose.
const (
	// MethodFixedHorizon analyses the test once, at its planned size: the
	// p-values and intervals are valid for one look only.
	MethodFixedHorizon = "fixed_horizon"
	// MethodSequential adds always-valid p-values and confidence sequences,
	// safe to look at after every batch of users, and decides on them.
	MethodSequential = "sequential"
)

// Defaults and limits of the options beyond the fixed-horizon analysis.
const (
	// DefaultSequentialTuningN is N*, the total users (all arms of a
	// comparison) at which the confidence sequence is tuned to be tightest
	// (GrowthBook's default).
	DefaultSequentialTuningN = 5000
	MinSequentialTuningN     = 100
	MaxSequentialTuningN     = 1_000_000_000
	// DefaultRiskThreshold is the expected loss, in relative-lift units
	// (0.0025 is 0.25% of the control mean), below which the Bayesian
	// decision ships an arm.
	DefaultRiskThreshold = 0.0025
	// DefaultCUPEDLookback is the pre-experiment window CUPED reads.
	DefaultCUPEDLookback = "14d"
	MaxCUPEDLookback     = 365 * 24 * time.Hour
	// MaxSegments is how many attribute keys a test may segment by.
	MaxSegments = 5
	// Limits of the attributes an assignment may carry.
	MaxAttributes          = 20
	MaxAttributeKeyBytes   = 64
	MaxAttributeValueBytes = 128
)

// Bayesian asks for Bayesian results next to the frequentist ones: per
// comparison, a Gaussian posterior on the relative lift (treatment -
// control)/|control|, the chance to beat control, the expected loss (risk)
// of shipping either arm, a credible interval at the confidence level and
// the decision of the risk threshold. The verdict stays the frequentist (or
// sequential) one.
type Bayesian struct {
	Enabled bool `json:"enabled"`
	// Prior on the relative lift: flat (the default) or normal.
	Prior Prior `json:"prior"`
	// RiskThreshold is the expected loss, as a fraction of the control
	// mean, below which an arm is shipped; default DefaultRiskThreshold.
	RiskThreshold float64 `json:"risk_threshold,omitempty"`
}

// Prior is the prior of the relative lift: in JSON the string "flat" (the
// zero value: the posterior is the likelihood) or {"mean": m, "sd": s}, a
// normal prior N(m, s²) (GrowthBook's proper prior is {"mean": 0, "sd": 0.3}).
type Prior struct {
	// Normal is set for a normal prior with Mean and SD.
	Normal   bool
	Mean, SD float64
	// invalid holds what a malformed prior said, for Validate to report.
	invalid string
}

// PriorFlat is the JSON of the flat prior.
const PriorFlat = "flat"

// MarshalJSON writes "flat" or {"mean", "sd"}.
func (p Prior) MarshalJSON() ([]byte, error) {
	if !p.Normal {
		return []byte(`"` + PriorFlat + `"`), nil
	}
	return json.Marshal(struct {
		Mean float64 `json:"mean"`
		SD   float64 `json:"sd"`
	}{p.Mean, p.SD})
}

// UnmarshalJSON reads "flat" or {"mean", "sd"}. Anything else is kept and
// reported by Validate, so that the error names the field.
func (p *Prior) UnmarshalJSON(b []byte) error {
	*p = Prior{}
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != PriorFlat {
			p.invalid = strconv.Quote(s)
		}
		return nil
	}
	var o struct {
		Mean *float64 `json:"mean"`
		SD   *float64 `json:"sd"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || o.Mean == nil || o.SD == nil {
		p.invalid = string(b)
		if len(p.invalid) > 40 {
			p.invalid = p.invalid[:40] + "..."
		}
		return nil
	}
	p.Normal, p.Mean, p.SD = true, *o.Mean, *o.SD
	return nil
}

// CUPED configures the variance reduction of continuous metrics by a
// pre-experiment covariate. A result's covariates (per metric) are used
// whenever they were recorded; with Enabled, a metric without recorded
// covariates uses each user's mean of the same metric in other tests during
// Lookback before the test started.
type CUPED struct {
	Enabled bool `json:"enabled"`
	// Lookback is the pre-experiment window: "14d" (days) or a Go duration
	// such as "336h"; default DefaultCUPEDLookback.
	Lookback string `json:"lookback,omitempty"`
}

// LookbackDuration returns the lookback window (0 when malformed).
func (c *CUPED) LookbackDuration() time.Duration {
	d, _ := parseLookback(c.Lookback)
	return d
}

func parseLookback(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

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

// setBeyondDefaults fills the defaults of the options of this file.
func (t *Test) setBeyondDefaults() {
	if t.AnalysisMethod == "" {
		t.AnalysisMethod = MethodFixedHorizon
	}
	if t.AnalysisMethod == MethodSequential && t.SequentialTuningN == 0 {
		t.SequentialTuningN = DefaultSequentialTuningN
	}
	if b := t.Bayesian; b != nil && b.RiskThreshold == 0 {
		b.RiskThreshold = DefaultRiskThreshold
	}
	if c := t.CUPED; c != nil && c.Lookback == "" {
		c.Lookback = DefaultCUPEDLookback
	}
	for i := range t.Metrics {
		m := &t.Metrics[i]
		if m.NonInferiorityMargin != nil && m.NonInferiorityMarginType == "" {
			m.NonInferiorityMarginType = MarginRelative
		}
	}
}

// validateBeyond checks the options of this file.
func (t *Test) validateBeyond() error {
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
	if b := t.Bayesian; b != nil {
		p := b.Prior
		switch {
		case p.invalid != "":
			return Invalid("bayesian.prior", `must be "flat" or {"mean": number, "sd": number}, not %s`, p.invalid)
		case p.Normal && (!finite(p.Mean) || math.Abs(p.Mean) > 100):
			return Invalid("bayesian.prior.mean", "must be a finite relative lift in [-100, 100]")
		case p.Normal && !(p.SD > 0 && p.SD <= 100):
			return Invalid("bayesian.prior.sd", "must be in (0, 100] (a relative lift; 0.3 is a common choice)")
		case b.RiskThreshold != 0 && !(b.RiskThreshold > 0 && b.RiskThreshold < 1):
			return Invalid("bayesian.risk_threshold", "must be in (0, 1) (a fraction of the control mean, e.g. 0.0025)")
		}
	}
	if c := t.CUPED; c != nil && c.Lookback != "" {
		d, err := parseLookback(c.Lookback)
		if err != nil || d < time.Hour || d > MaxCUPEDLookback {
			return Invalid("cuped.lookback", `must be a duration from 1h to 365d, such as "14d" or "336h"`)
		}
	}
	if len(t.Segments) > MaxSegments {
		return Invalid("segments", "has more than %d attribute keys", MaxSegments)
	}
	seen := map[string]bool{}
	for i, k := range t.Segments {
		field := fmt.Sprintf("segments[%d]", i)
		if !ValidAttributeKey(k) {
			return Invalid(field, "must be an attribute key of 1-%d characters of letters, digits and _ . : @ = + -", MaxAttributeKeyBytes)
		}
		if seen[k] {
			return Invalid(field, "duplicates segment %q", k)
		}
		seen[k] = true
	}
	return nil
}

// validateBeyond checks a metric's ratio and non-inferiority fields.
func (m *Metric) validateBeyond(field string) error {
	if m.Type == MetricRatio {
		switch {
		case !ValidID(m.Numerator):
			return Invalid(field+".numerator", "is required for a ratio metric and must be a metric name")
		case !ValidID(m.Denominator):
			return Invalid(field+".denominator", "is required for a ratio metric and must be a metric name")
		case m.Numerator == m.Denominator:
			return Invalid(field+".denominator", "must differ from the numerator")
		case m.Numerator == m.Name || m.Denominator == m.Name:
			return Invalid(field+".numerator", "a ratio metric cannot be its own numerator or denominator")
		}
	} else if m.Numerator != "" || m.Denominator != "" {
		return Invalid(field+".numerator", "numerator and denominator apply to ratio metrics only")
	}
	if p := m.NonInferiorityMargin; p != nil {
		if m.Role != RoleGuardrail {
			return Invalid(field+".non_inferiority_margin", "applies to guardrail metrics only")
		}
		switch m.NonInferiorityMarginType {
		case MarginRelative:
			if !(*p > 0 && *p < 1) {
				return Invalid(field+".non_inferiority_margin", "must be in (0, 1) for a relative margin (0.02 is 2%% of the control mean)")
			}
		case MarginAbsolute:
			if !(*p > 0) || math.IsInf(*p, 1) {
				return Invalid(field+".non_inferiority_margin", "must be a positive number of metric units")
			}
		default:
			return Invalid(field+".non_inferiority_margin_type", "must be relative or absolute")
		}
	} else if m.NonInferiorityMarginType != "" {
		return Invalid(field+".non_inferiority_margin_type", "applies only with non_inferiority_margin")
	}
	return nil
}

// validateRatios checks that ratio metrics are built from recorded metrics,
// not from other ratios.
func (t *Test) validateRatios() error {
	ratio := map[string]bool{}
	for _, m := range t.Metrics {
		if m.Type == MetricRatio {
			ratio[m.Name] = true
		}
	}
	for i, m := range t.Metrics {
		if m.Type != MetricRatio {
			continue
		}
		if ratio[m.Numerator] {
			return Invalid(fmt.Sprintf("metrics[%d].numerator", i), "%q is a ratio metric: use recorded metrics", m.Numerator)
		}
		if ratio[m.Denominator] {
			return Invalid(fmt.Sprintf("metrics[%d].denominator", i), "%q is a ratio metric: use recorded metrics", m.Denominator)
		}
	}
	return nil
}

// ValidAttributeKey reports whether s can name an assignment attribute.
func ValidAttributeKey(s string) bool {
	return len(s) <= MaxAttributeKeyBytes && ValidID(s)
}

// ValidateAttributes checks an assignment's attributes: at most
// MaxAttributes, keys as ValidAttributeKey, values of 1 to
// MaxAttributeValueBytes bytes of UTF-8 without control characters.
func ValidateAttributes(field string, attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return Invalid(field, "has more than %d attributes", MaxAttributes)
	}
	for k, v := range attrs {
		if !ValidAttributeKey(k) {
			return Invalid(field, "attribute key %.40q must be 1-%d characters of letters, digits and _ . : @ = + -", k, MaxAttributeKeyBytes)
		}
		if v == "" {
			return Invalid(field+"."+k, "is empty")
		}
		if len(v) > MaxAttributeValueBytes {
			return Invalid(field+"."+k, "is longer than %d bytes", MaxAttributeValueBytes)
		}
		if err := ValidateUserID(field+"."+k, v); err != nil {
			return Invalid(field+"."+k, "must be valid UTF-8 without control characters")
		}
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
