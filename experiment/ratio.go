package experiment

import "fmt"

// validateRatio checks a metric's numerator and denominator: set, and
// distinct, for a ratio metric; unset for any other.
func (m *Metric) validateRatio(field string) error {
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
