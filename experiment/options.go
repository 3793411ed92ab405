package experiment

// The analysis options of a test, each in its own file: the method
// (method.go), Bayesian results (bayesian.go), CUPED (cuped.go), segments
// (attribute.go), and per metric ratios (ratio.go) and non-inferiority
// margins (margin.go). SetDefaults and Validate (experiment.go) and
// validateMetrics (metric.go) reach them through the three hooks below.

// setOptionDefaults fills the defaults of the analysis options.
func (t *Test) setOptionDefaults() {
	t.setMethodDefaults()
	if t.Bayesian != nil {
		t.Bayesian.setDefaults()
	}
	if t.CUPED != nil {
		t.CUPED.setDefaults()
	}
	for i := range t.Metrics {
		t.Metrics[i].setMarginDefault()
	}
}

// validateOptions checks the analysis options.
func (t *Test) validateOptions() error {
	if err := t.validateMethod(); err != nil {
		return err
	}
	if t.Bayesian != nil {
		if err := t.Bayesian.validate(); err != nil {
			return err
		}
	}
	if t.CUPED != nil {
		if err := t.CUPED.validate(); err != nil {
			return err
		}
	}
	return t.validateSegments()
}

// validateOptions checks a metric's ratio and non-inferiority fields.
func (m *Metric) validateOptions(field string) error {
	if err := m.validateRatio(field); err != nil {
		return err
	}
	return m.validateMargin(field)
}
