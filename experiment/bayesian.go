package experiment

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// DefaultRiskThreshold is the expected loss, in relative-lift units
// (0.0025 is 0.25% of the control mean), below which the Bayesian decision
// ships an arm.
const DefaultRiskThreshold = 0.0025

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

// setDefaults fills the risk threshold.
func (b *Bayesian) setDefaults() {
	if b.RiskThreshold == 0 {
		b.RiskThreshold = DefaultRiskThreshold
	}
}

// validate checks the prior and the risk threshold.
func (b *Bayesian) validate() error {
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
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
