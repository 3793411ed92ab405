package experiment

import "math"

// setMarginDefault makes a non-inferiority margin relative unless its type
// says otherwise.
func (m *Metric) setMarginDefault() {
	if m.NonInferiorityMargin != nil && m.NonInferiorityMarginType == "" {
		m.NonInferiorityMarginType = MarginRelative
	}
}

// validateMargin checks a metric's non-inferiority margin and its type.
func (m *Metric) validateMargin(field string) error {
	p := m.NonInferiorityMargin
	if p == nil {
		if m.NonInferiorityMarginType != "" {
			return Invalid(field+".non_inferiority_margin_type", "applies only with non_inferiority_margin")
		}
		return nil
	}
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
	return nil
}
