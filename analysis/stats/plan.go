package stats

import (
	"fmt"
	"math"
)

// PowerRequest is the body of POST /api/ab-testing/power, which the API
// decodes and plans with Plan. Give MDE for the users needed, or TotalUsers
// for the MDE those users detect.
type PowerRequest struct {
	// MetricType is "continuous" (the default) or "binary".
	MetricType     string   `json:"metric_type"`
	BaselineMean   *float64 `json:"baseline_mean"`
	BaselineStdDev *float64 `json:"baseline_std_dev"`
	BaselineRate   *float64 `json:"baseline_rate"`
	MDE            *float64 `json:"mde"`
	MDEType        string   `json:"mde_type"`
	Alpha          *float64 `json:"alpha"`
	Power          *float64 `json:"power"`
	Variants       int      `json:"variants"`
	// TrafficPercentages lists the variants' shares, control first; equal
	// shares by default.
	TrafficPercentages []float64 `json:"traffic_percentages"`
	TotalUsers         *int64    `json:"total_users"`
}

// PowerResponse is the plan.
type PowerResponse struct {
	MetricType string `json:"metric_type"`
	// Method describes the calculation.
	Method string  `json:"method"`
	Alpha  float64 `json:"alpha"`
	// AlphaPerComparison is alpha divided by the number of comparisons
	// (Bonferroni), a plan that Holm's correction can only improve on.
	AlphaPerComparison float64           `json:"alpha_per_comparison"`
	Power              float64           `json:"power"`
	MDEAbsolute        float64           `json:"mde_absolute"`
	MDERelative        *float64          `json:"mde_relative"`
	UsersPerVariant    []int64           `json:"users_per_variant"`
	TotalUsers         int64             `json:"total_users"`
	Comparisons        []PowerComparison `json:"comparisons"`
}

// PowerComparison is one treatment against control in the plan.
type PowerComparison struct {
	VariantIndex      int     `json:"variant_index"`
	TrafficPercentage float64 `json:"traffic_percentage"`
	// TreatmentUsers is the exact (real) solution for this comparison's
	// treatment; the plan rounds up.
	TreatmentUsers float64  `json:"treatment_users"`
	ControlUsers   float64  `json:"control_users"`
	MDEAbsolute    float64  `json:"mde_absolute"`
	MDERelative    *float64 `json:"mde_relative"`
}

// A PlanError is a power request that cannot be planned. Its message says
// why in the request's terms (its JSON field names), for the caller to show
// as it is.
type PlanError struct{ msg string }

func (e *PlanError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &PlanError{msg: fmt.Sprintf(format, args...)}
}

// PowerMethod is the calculation that Plan performs.
const PowerMethod = "two-sided z-test (normal approximation), as statsmodels NormalIndPower / normal_power_het; " +
	"binary metrics with the unpooled variance p(1-p) of each arm"

// Plan answers a power request for a test of at most maxVariants variants
// (a product limit, maxVariants, which the caller passes so that
// this package imports no other). It is a pure function; every error is a
// *PlanError.
func Plan(req PowerRequest, maxVariants int) (*PowerResponse, error) {
	alpha, power := 0.05, 0.8
	if req.Alpha != nil {
		alpha = *req.Alpha
	}
	if req.Power != nil {
		power = *req.Power
	}
	if !(alpha > 0 && alpha < 0.5) {
		return nil, badRequest("alpha must be in (0, 0.5)")
	}
	if !(power >= 0.5 && power < 1) {
		return nil, badRequest("power must be in [0.5, 1)")
	}
	shares := req.TrafficPercentages
	if len(shares) == 0 {
		k := req.Variants
		if k == 0 {
			k = 2
		}
		if k < 2 || k > maxVariants {
			return nil, badRequest("variants must be in [2, %d]", maxVariants)
		}
		for range k {
			shares = append(shares, 100/float64(k))
		}
	}
	if req.Variants != 0 && req.Variants != len(shares) {
		return nil, badRequest("variants is %d but traffic_percentages has %d entries", req.Variants, len(shares))
	}
	if len(shares) < 2 || len(shares) > maxVariants {
		return nil, badRequest("traffic_percentages needs 2 to %d entries", maxVariants)
	}
	var sum float64
	for _, w := range shares {
		if !(w > 0 && w <= 100) {
			return nil, badRequest("traffic_percentages must be in (0, 100]")
		}
		sum += w
	}
	if math.Abs(sum-100) > 1e-9 {
		return nil, badRequest("traffic_percentages sum to %v, want 100", sum)
	}

	spec := PowerSpec{Alpha: alpha / float64(len(shares)-1)}
	var baseline float64
	switch req.MetricType {
	case "", "continuous":
		req.MetricType = "continuous"
		if req.BaselineMean == nil || req.BaselineStdDev == nil || req.BaselineRate != nil {
			return nil, badRequest("a continuous metric needs baseline_mean and baseline_std_dev (not baseline_rate)")
		}
		baseline = *req.BaselineMean
		spec.StdDev = *req.BaselineStdDev
		if !(spec.StdDev > 0) || math.IsInf(spec.StdDev, 0) || math.IsNaN(baseline) || math.IsInf(baseline, 0) {
			return nil, badRequest("baseline_std_dev must be positive and baseline_mean finite")
		}
	case "binary":
		spec.Binary = true
		if req.BaselineRate == nil || req.BaselineMean != nil || req.BaselineStdDev != nil {
			return nil, badRequest("a binary metric needs baseline_rate (not baseline_mean or baseline_std_dev)")
		}
		baseline = *req.BaselineRate
		if !(baseline > 0 && baseline < 1) {
			return nil, badRequest("baseline_rate must be in (0, 1)")
		}
	default:
		return nil, badRequest("metric_type must be continuous or binary")
	}
	spec.Baseline = baseline

	resp := &PowerResponse{MetricType: req.MetricType, Method: PowerMethod, Alpha: alpha,
		AlphaPerComparison: spec.Alpha, Power: power}
	relative := func(abs float64) *float64 {
		if baseline == 0 {
			return nil
		}
		r := abs / math.Abs(baseline)
		return &r
	}
	switch {
	case (req.MDE == nil) == (req.TotalUsers == nil):
		return nil, badRequest("give exactly one of mde (for the users needed) and total_users (for the detectable effect)")
	case req.MDE != nil:
		delta := *req.MDE
		switch req.MDEType {
		case "", "relative":
			if baseline == 0 {
				return nil, badRequest("a relative mde needs a non-zero baseline; use mde_type absolute")
			}
			delta *= math.Abs(baseline)
		case "absolute":
		default:
			return nil, badRequest("mde_type must be relative or absolute")
		}
		if !(delta > 0) || math.IsInf(delta, 0) || (spec.Binary && baseline+delta >= 1) {
			return nil, badRequest("mde must be a positive increase (below a rate of 1 for binary metrics)")
		}
		resp.MDEAbsolute, resp.MDERelative = delta, relative(delta)
		var total float64
		for i, w := range shares[1:] {
			spec.Ratio = shares[0] / w
			n, err := spec.SampleSize(delta, power)
			if err != nil {
				return nil, badRequest("%v", err)
			}
			resp.Comparisons = append(resp.Comparisons, PowerComparison{VariantIndex: i + 1, TrafficPercentage: w,
				TreatmentUsers: n, ControlUsers: n * spec.Ratio, MDEAbsolute: delta, MDERelative: relative(delta)})
			total = math.Max(total, n*100/w)
		}
		if total > 1e15 {
			return nil, badRequest("the plan needs more than 10^15 users")
		}
		for _, w := range shares {
			n := int64(math.Ceil(total * w / 100 * (1 - 1e-12)))
			resp.UsersPerVariant = append(resp.UsersPerVariant, n)
			resp.TotalUsers += n
		}
	default:
		total := *req.TotalUsers
		if total < 2 || total > 1e15 {
			return nil, badRequest("total_users must be in [2, 10^15]")
		}
		resp.TotalUsers = total
		for i, w := range shares {
			n := float64(total) * w / 100
			resp.UsersPerVariant = append(resp.UsersPerVariant, int64(math.Floor(n)))
			if i == 0 {
				continue
			}
			spec.Ratio = shares[0] / w
			mde, err := spec.MDE(n, power)
			if err != nil {
				return nil, badRequest("no effect below a rate of 1 reaches that power with %d users", total)
			}
			resp.Comparisons = append(resp.Comparisons, PowerComparison{VariantIndex: i, TrafficPercentage: w,
				TreatmentUsers: n, ControlUsers: n * spec.Ratio, MDEAbsolute: mde, MDERelative: relative(mde)})
			resp.MDEAbsolute = math.Max(resp.MDEAbsolute, mde)
		}
		resp.MDERelative = relative(resp.MDEAbsolute)
	}
	return resp, nil
}
