// Package experiment is the domain of Abacus: an A/B test definition, its
// variants and lifecycle, the deterministic assignment of users to variants,
// and the analysis report that the analyzer produces.
//
// It is a leaf package: it imports only the standard library, so that the api,
// ingest and analysis stages can share it without depending on each other.
package experiment

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrNotFound reports that no test has the given id.
	ErrNotFound = errors.New("test not found")
	// ErrConflict reports a lifecycle transition that the test's status forbids,
	// or an action that needs another status (assigning a user to a draft test).
	ErrConflict = errors.New("conflict with the test's status")
)

// ValidationError describes one invalid field of a request or definition.
type ValidationError struct {
	Field   string // JSON path of the offending field, e.g. "variants[1].traffic_percentage"
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Invalid returns a *ValidationError for field.
func Invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Type is the kind of thing a test compares.
type Type string

// The test types Abacus knows.
const (
	TypeWorkflow Type = "workflow"
	TypePrompt   Type = "prompt"
	TypeModel    Type = "model"
	TypeRouting  Type = "routing"
)

// Valid reports whether t is a known test type.
func (t Type) Valid() bool {
	switch t {
	case TypeWorkflow, TypePrompt, TypeModel, TypeRouting:
		return true
	}
	return false
}

// Status is a test's lifecycle state: draft -> running -> stopped.
type Status string

// The lifecycle states.
const (
	StatusDraft   Status = "draft"
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusRunning, StatusStopped:
		return true
	}
	return false
}

// Defaults and limits of a definition.
const (
	DefaultMinSampleSize   = 100
	DefaultConfidenceLevel = 0.95
	MaxVariants            = 100
	MaxIDLength            = 128
	MaxNameLength          = 256
)

// Variant is one arm of a test.
type Variant struct {
	ID                string         `json:"variant_id"`
	Name              string         `json:"variant_name"`
	Configuration     map[string]any `json:"configuration"`
	TrafficPercentage float64        `json:"traffic_percentage"`
	// Value is the variant's flag value for OpenFeature clients: a boolean,
	// string, number or object, of one JSON type across a test's variants.
	// Nil means Configuration is the value.
	Value any `json:"value,omitempty"`
}

// FlagValue is the value an OpenFeature evaluation of the variant returns:
// Value, or Configuration when no value is set.
func (v Variant) FlagValue() any {
	if v.Value != nil {
		return v.Value
	}
	if v.Configuration == nil {
		return map[string]any{}
	}
	return v.Configuration
}

// Test is an A/B test definition with its lifecycle state. It is stored as
// JSON, so its field names are part of the API and of the stored format.
type Test struct {
	ID string `json:"test_id"`
	// Key is an optional human-readable name that is unique across tests
	// (checkout-flow): OpenFeature clients evaluate a test by its key or id.
	Key              string     `json:"key,omitempty"`
	Name             string     `json:"test_name"`
	Type             Type       `json:"test_type"`
	Description      string     `json:"description,omitempty"`
	Variants         []Variant  `json:"variants"`
	ControlVariantID string     `json:"control_variant_id"`
	PrimaryMetric    string     `json:"primary_metric"`
	MinSampleSize    int64      `json:"min_sample_size"`
	ConfidenceLevel  float64    `json:"confidence_level"`
	Status           Status     `json:"status"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	StoppedAt        *time.Time `json:"stopped_at,omitempty"`

	// Metrics declares how metrics are analysed (see Metric); undeclared
	// metrics get MetricSpec's defaults.
	Metrics []Metric `json:"metrics,omitempty"`
	// MultipleComparison is the correction of the p-values of several
	// variants against control: holm (the default when empty) or
	// benjamini_hochberg.
	MultipleComparison string `json:"multiple_comparison,omitempty"`

	// AnalysisMethod is fixed_horizon (the default) or sequential; with
	// sequential, SequentialTuningN is N* of the confidence sequences
	// (default DefaultSequentialTuningN). See method.go.
	AnalysisMethod    string `json:"analysis_method,omitempty"`
	SequentialTuningN int64  `json:"sequential_tuning_n,omitempty"`
	// Bayesian asks for Bayesian results next to the frequentist ones.
	Bayesian *Bayesian `json:"bayesian,omitempty"`
	// CUPED configures variance reduction by pre-experiment covariates.
	CUPED *CUPED `json:"cuped,omitempty"`
	// Segments names the assignment attributes the primary metric is
	// analysed by (e.g. platform, country).
	Segments []string `json:"segments,omitempty"`
}

// idPattern is what test, variant and user ids and metric names may contain:
// printable ASCII without spaces, quotes or path separators. It keeps ids safe
// as NATS KV keys, URL path segments and log values.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@=+-]*$`)

// ValidID reports whether s is a well-formed identifier (test, variant or
// metric name) of at most MaxIDLength bytes: it matches idPattern. It runs
// for every metric of every event, so it scans bytes instead of running
// the regular expression (TestValidIDMatchesPattern keeps them equal).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '@' || c == '=' || c == '+' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// ValidKey reports whether s is a well-formed test key: 1 to MaxIDLength
// letters, digits and "_", ".", "-", starting with a letter or digit. It is
// stricter than ValidID so that a key is safe as a NATS KV key too.
func ValidKey(s string) bool {
	return ValidID(s) && !strings.ContainsAny(s, ":@=+")
}

// valueKind names the JSON type of a variant's flag value, or "" for a
// type a flag cannot have (null, an array).
func valueKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	}
	return ""
}

// validateValues checks the variants' flag values: set on all variants or
// on none, each a boolean, string, number or object, all of one type.
func (t *Test) validateValues() error {
	first := ""
	for i, v := range t.Variants {
		field := fmt.Sprintf("variants[%d].value", i)
		if (v.Value != nil) != (t.Variants[0].Value != nil) {
			return Invalid(field, "is set on some variants only: set a value on every variant or on none (then the configuration is the value)")
		}
		if v.Value == nil {
			continue
		}
		kind := valueKind(v.Value)
		switch {
		case kind == "":
			return Invalid(field, "must be a boolean, string, number or object")
		case first == "":
			first = kind
		case kind != first:
			return Invalid(field, "is a %s, but variants[0].value is a %s: a test's values have one type", kind, first)
		}
	}
	return nil
}

// ValidateUserID checks a user id: 1 to MaxIDLength bytes of valid UTF-8
// without control characters. User ids come from client systems (emails,
// UUIDs, numbers), so they are less restricted than the ids Abacus mints.
func ValidateUserID(field, s string) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if len(s) > MaxIDLength {
		return Invalid(field, "is longer than %d bytes", MaxIDLength)
	}
	for _, r := range s {
		if r == '\uFFFD' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return Invalid(field, "must be valid UTF-8 without control characters")
		}
	}
	return nil
}

// SetDefaults fills the optional fields that a create request may omit.
func (t *Test) SetDefaults() {
	if t.MinSampleSize == 0 {
		t.MinSampleSize = DefaultMinSampleSize
	}
	if t.ConfidenceLevel == 0 {
		t.ConfidenceLevel = DefaultConfidenceLevel
	}
	if t.Status == "" {
		t.Status = StatusDraft
	}
	t.setMetricDefaults()
	t.setOptionDefaults()
	for i := range t.Variants {
		if t.Variants[i].Configuration == nil {
			t.Variants[i].Configuration = map[string]any{}
		}
	}
}

// Validate checks the definition. It returns the first problem found as a
// *ValidationError.
func (t *Test) Validate() error {
	name := strings.TrimSpace(t.Name)
	switch {
	case name == "":
		return Invalid("test_name", "is required")
	case len(t.Name) > MaxNameLength:
		return Invalid("test_name", "is longer than %d bytes", MaxNameLength)
	case !t.Type.Valid():
		return Invalid("test_type", "must be one of workflow, prompt, model, routing")
	case len(t.Variants) < 2:
		return Invalid("variants", "needs at least 2 variants")
	case len(t.Variants) > MaxVariants:
		return Invalid("variants", "has more than %d variants", MaxVariants)
	case !ValidID(t.PrimaryMetric):
		return Invalid("primary_metric", "is required and must match %s (at most %d bytes)", idPattern, MaxIDLength)
	case t.MinSampleSize < 2:
		return Invalid("min_sample_size", "must be at least 2")
	case !(t.ConfidenceLevel >= 0.5 && t.ConfidenceLevel < 1):
		return Invalid("confidence_level", "must be in [0.5, 1)")
	}
	seen := make(map[string]bool, len(t.Variants))
	var sum float64
	for i, v := range t.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if !ValidID(v.ID) {
			return Invalid(field+".variant_id", "is required and must match %s (at most %d bytes)", idPattern, MaxIDLength)
		}
		if seen[v.ID] {
			return Invalid(field+".variant_id", "duplicates variant %q", v.ID)
		}
		seen[v.ID] = true
		if len(v.Name) > MaxNameLength {
			return Invalid(field+".variant_name", "is longer than %d bytes", MaxNameLength)
		}
		p := v.TrafficPercentage
		if math.IsNaN(p) || p <= 0 || p > 100 {
			return Invalid(field+".traffic_percentage", "must be in (0, 100]")
		}
		sum += p
	}
	if math.Abs(sum-100) > 1e-9 {
		return Invalid("variants", "traffic percentages sum to %v, want 100", sum)
	}
	if !seen[t.ControlVariantID] {
		return Invalid("control_variant_id", "must name one of the variants")
	}
	if t.Key != "" && !ValidKey(t.Key) {
		return Invalid("key", "must be 1-%d characters of letters, digits and _ . - starting with a letter or digit", MaxIDLength)
	}
	if err := t.validateValues(); err != nil {
		return err
	}
	if err := t.validateMetrics(); err != nil {
		return err
	}
	return t.validateOptions()
}

// Variant returns the variant with the given id.
func (t *Test) Variant(id string) (Variant, bool) {
	for _, v := range t.Variants {
		if v.ID == id {
			return v, true
		}
	}
	return Variant{}, false
}

// Start moves a draft test to running.
func (t *Test) Start(now time.Time) error {
	if t.Status != StatusDraft {
		return fmt.Errorf("starting a %s test: %w", t.Status, ErrConflict)
	}
	t.Status = StatusRunning
	t.StartedAt = &now
	t.UpdatedAt = now
	return nil
}

// Stop moves a running test to stopped.
func (t *Test) Stop(now time.Time) error {
	if t.Status != StatusRunning {
		return fmt.Errorf("stopping a %s test: %w", t.Status, ErrConflict)
	}
	t.Status = StatusStopped
	t.StoppedAt = &now
	t.UpdatedAt = now
	return nil
}
