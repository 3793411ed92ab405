package analysis

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
)

// Names of the tests a report states.
const (
	TestWelch      = "welch_t_test"
	TestProportion = "two_proportion_z_test_unpooled"
	// RelativeCIMethod is how relative lifts get their intervals.
	RelativeCIMethod = "fieller"
)

// SRM check methods.
const (
	SRMChiSquare  = "chi_square"
	SRMSequential = "sequential_bayes_factor"
)

// SRMThreshold is the p-value below which the users per variant are taken
// not to match the traffic split (GrowthBook, Eppo and PostHog use it too).
const SRMThreshold = 0.001

// mdePower is the power at which each comparison's current minimum
// detectable effect is reported.
const mdePower = 0.8

// Data is what the report is computed from: assigned users per variant, and
// for each metric the per-variant statistics over users.
type Data struct {
	Assignments map[string]int64
	// Metrics holds continuous statistics: per metric and variant, over the
	// users with at least one result, of the per-user means.
	Metrics map[string]map[string]stats.Sample
	// Binary holds binary statistics: per metric and variant, the assigned
	// (or recorded) users and those with a non-zero result.
	Binary map[string]map[string]stats.Proportion
	// Caps holds the winsorization cap of each winsorized metric.
	Caps map[string]float64

	// Ratios holds per ratio metric and variant the moments of the
	// per-user numerator and denominator sums.
	Ratios map[string]map[string]stats.RatioSample
	// CUPED holds per continuous metric the covariate moments, when
	// covariates were recorded or the test enables CUPED.
	CUPED map[string]CUPEDData
	// Segments holds the primary metric by the values of each declared
	// segment attribute.
	Segments map[string]SegmentData
}

// BuildReport computes the report of t from data. It is a pure function.
func BuildReport(t *experiment.Test, data Data, now time.Time) *experiment.Report {
	r := &experiment.Report{
		TestID:             t.ID,
		TestName:           t.Name,
		Status:             t.Status,
		ConfidenceLevel:    t.ConfidenceLevel,
		MinSampleSize:      t.MinSampleSize,
		ControlVariant:     t.ControlVariantID,
		PrimaryMetric:      t.PrimaryMetric,
		ComputedAt:         now.UTC(),
		Assignments:        make(map[string]int64, len(t.Variants)),
		MultipleComparison: t.Correction(),
		AnalysisMethod:     t.Method(),
		Health: experiment.Health{
			GuardrailViolations:    []experiment.GuardrailViolation{},
			NonInferiorityNotShown: []experiment.GuardrailViolation{},
		},
	}
	if t.Sequential() {
		r.SequentialTuningN = ptr(t.TuningN())
	}
	for _, v := range t.Variants {
		r.Assignments[v.ID] = data.Assignments[v.ID]
	}
	for _, name := range metricNames(t, data) {
		r.Metrics = append(r.Metrics, metricReport(t, t.MetricSpec(name), data))
	}
	p := r.Metrics[0]
	r.Method = p.Test
	r.Health.SRM = srmCheck(t, r.Assignments)
	r.Health.GuardrailViolations = guardrailViolations(t, r.Metrics)
	r.Health.NonInferiorityNotShown = nonInferiorityNotShown(r.Metrics)
	r.Verdict = verdict(t, p, r.Health)
	r.Segments = segmentReports(t, t.MetricSpec(t.PrimaryMetric), data)
	r.WinnerVariantID, r.Decision, r.Reason = r.Verdict.WinnerVariantID, r.Verdict.Code, r.Verdict.Message
	r.PValue, r.VariantResults = seedResults(p, r.WinnerVariantID)
	return r
}

// seedResults are the primary metric's results in the seed's shape (see
// experiment.Report.PValue): the decision's p-value and a row per variant.
func seedResults(p experiment.MetricReport, winner *string) (*float64, []experiment.VariantResult) {
	decisive := func(c experiment.Comparison) *float64 {
		if c.Sequential != nil {
			return c.Sequential.PValueAdjusted
		}
		return c.PValueAdjusted
	}
	byVariant := make(map[string]*float64, len(p.Comparisons))
	var pv *float64
	for _, c := range p.Comparisons {
		q := decisive(c)
		byVariant[c.VariantID] = q
		if q != nil && (pv == nil || *q < *pv) {
			pv = q
		}
	}
	if winner != nil {
		if q, ok := byVariant[*winner]; ok && q != nil {
			pv = q
		}
	}
	rows := make([]experiment.VariantResult, len(p.Variants))
	for i, v := range p.Variants {
		rows[i] = experiment.VariantResult{VariantStats: v, PValue: byVariant[v.VariantID]}
	}
	return pv, rows
}

// metricNames lists the primary metric, then every other declared or
// recorded metric by name.
func metricNames(t *experiment.Test, data Data) []string {
	set := map[string]bool{}
	for name := range data.Metrics {
		set[name] = true
	}
	for name := range data.Binary {
		set[name] = true
	}
	for name := range data.Ratios {
		set[name] = true
	}
	for _, m := range t.Metrics {
		set[m.Name] = true
	}
	delete(set, t.PrimaryMetric)
	names := make([]string, 0, len(set)+1)
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	return append([]string{t.PrimaryMetric}, names...)
}

// arm is one variant's statistics for one metric, whatever its type.
type arm struct {
	sample stats.Sample // continuous; for binary, N and Mean (the rate)
	prop   stats.Proportion
	// ratio is set for a ratio metric; sample then holds the ratio as a
	// mean with variance RatioVariance·N, so that the tests built on
	// Samples see the delta-method standard error.
	ratio *stats.RatioSample
}

func metricReport(t *experiment.Test, spec experiment.Metric, data Data) experiment.MetricReport {
	m := experiment.MetricReport{
		Metric: spec.Name, Primary: spec.Name == t.PrimaryMetric,
		Type: spec.Type, Direction: spec.Direction, Role: spec.Role,
		WinsorizePercentile: spec.WinsorizePercentile,
		Numerator:           spec.Numerator, Denominator: spec.Denominator,
		NonInferiorityMargin: spec.NonInferiorityMargin, NonInferiorityMarginType: spec.NonInferiorityMarginType,
	}
	binary := spec.Type == experiment.MetricBinary
	m.Test = TestWelch
	switch spec.Type {
	case experiment.MetricBinary:
		m.Test = TestProportion
	case experiment.MetricRatio:
		m.Test = TestRatio
	}
	if c, ok := data.Caps[spec.Name]; ok && spec.WinsorizePercentile != nil {
		m.WinsorizeCap = ptr(c)
	}
	arms := make(map[string]arm, len(t.Variants))
	for _, v := range t.Variants {
		var a arm
		if spec.Type == experiment.MetricRatio {
			a = ratioArm(data.Ratios[spec.Name][v.ID])
			arms[v.ID] = a
			m.Variants = append(m.Variants, ratioVariantStats(t, v, a))
			continue
		}
		if binary {
			a.prop = data.Binary[spec.Name][v.ID]
			a.sample = stats.Sample{N: a.prop.N, Mean: a.prop.Rate()}
			if a.prop.N > 1 {
				p := a.sample.Mean
				a.sample.Variance = p * (1 - p) * float64(a.prop.N) / float64(a.prop.N-1)
			}
		} else {
			a.sample = data.Metrics[spec.Name][v.ID]
		}
		arms[v.ID] = a
		m.Variants = append(m.Variants, variantStats(t, v, a, binary))
	}
	for _, v := range t.Variants {
		if v.ID == t.ControlVariantID {
			continue
		}
		m.Comparisons = append(m.Comparisons, compareWithOptions(t, spec, data, arms[t.ControlVariantID], arms[v.ID], v.ID))
	}
	adjust(t, m.Comparisons)
	adjustSequential(t, m.Comparisons)
	m.WinnerVariantID, m.Decision, m.Reason = decide(t, m)
	return m
}

func variantStats(t *experiment.Test, v experiment.Variant, a arm, binary bool) experiment.VariantStats {
	s := a.sample
	vs := experiment.VariantStats{VariantID: v.ID, VariantName: v.Name, SampleSize: s.N}
	if binary {
		vs.Conversions = ptr(a.prop.Successes)
	}
	if s.N > 0 {
		vs.MeanValue = ptr(s.Mean)
	}
	if s.N > 1 {
		vs.StdDev = ptr(math.Sqrt(s.Variance))
		if binary {
			// The Wald interval, consistent with the z-test.
			h := stats.NormalCritical(1-t.ConfidenceLevel) * math.Sqrt(s.Mean*(1-s.Mean)/float64(s.N))
			vs.ConfidenceIntervalLower, vs.ConfidenceIntervalUpper = ptr(s.Mean-h), ptr(s.Mean+h)
		} else if lo, hi, err := stats.MeanInterval(s, t.ConfidenceLevel); err == nil {
			vs.ConfidenceIntervalLower, vs.ConfidenceIntervalUpper = ptr(lo), ptr(hi)
		}
	}
	return vs
}

func compare(t *experiment.Test, spec experiment.Metric, control, treatment arm, variantID string) experiment.Comparison {
	c := experiment.Comparison{VariantID: variantID, ControlVariantID: t.ControlVariantID, RelativeCIMethod: RelativeCIMethod}
	for _, n := range []int64{control.sample.N, treatment.sample.N} {
		c.UsersStillNeeded += max(0, t.MinSampleSize-n)
	}
	mc, mt := control.sample.Mean, treatment.sample.Mean
	if control.sample.N > 0 && treatment.sample.N > 0 {
		c.AbsoluteDifference = ptr(mt - mc)
		if mc != 0 {
			c.RelativeDifference = ptr((mt - mc) / math.Abs(mc))
		}
		better := mt > mc
		if spec.Direction == experiment.DirectionDecrease {
			better = mt < mc
		}
		c.Better = ptr(better)
	}
	var (
		se, crit, p float64
		err         error
	)
	if spec.Type == experiment.MetricBinary {
		var z stats.ZTest
		z, err = stats.TwoProportionZTest(control.prop, treatment.prop, t.ConfidenceLevel)
		if err == nil {
			c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper = ptr(z.CILower), ptr(z.CIUpper)
			c.ZStatistic, p, c.PValuePooled = ptr(z.Z), z.PValue, ptr(z.PValuePooled)
			se, crit = z.StdErr, stats.NormalCritical(1-t.ConfidenceLevel)
		}
	} else {
		var w stats.Welch
		w, err = stats.WelchTTest(control.sample, treatment.sample, t.ConfidenceLevel)
		if err == nil {
			c.ConfidenceIntervalLower, c.ConfidenceIntervalUpper = ptr(w.CILower), ptr(w.CIUpper)
			c.TStatistic, c.DegreesOfFreedom, p = ptr(w.T), ptr(w.DoF), w.PValue
			se, crit = w.StdErr, w.Critical
		}
	}
	switch {
	case errors.Is(err, stats.ErrInsufficientData) && spec.Type == experiment.MetricBinary:
		c.Note = "each variant needs at least 1 user for a test"
		return c
	case errors.Is(err, stats.ErrInsufficientData):
		c.Note = "each variant needs at least 2 users for a test"
		return c
	case errors.Is(err, stats.ErrZeroVariance):
		c.Note = "both variants have zero variance (every user has the same value): no test is possible"
		return c
	case err != nil:
		c.Note = err.Error()
		return c
	}
	c.PValue = ptr(p)
	c.Significant = p < 1-t.ConfidenceLevel
	c.MinimumDetectableEffect = ptr(stats.CurrentMDE(se, 1-t.ConfidenceLevel, mdePower))
	vc := control.sample.Variance / float64(control.sample.N)
	vt := treatment.sample.Variance / float64(treatment.sample.N)
	if spec.Type == experiment.MetricBinary {
		vc = mc * (1 - mc) / float64(control.sample.N)
		vt = mt * (1 - mt) / float64(treatment.sample.N)
	}
	if ri := stats.Fieller(mc, vc, mt, vt, crit); ri.Bounded {
		c.RelativeCILower, c.RelativeCIUpper = ptr(ri.Lower), ptr(ri.Upper)
	}
	return c
}

// compareWithOptions is one treatment against control with every analysis
// the test asks for: CUPED-adjusted arms when covariates exist, then the
// fixed-horizon test and, on the same arms, the sequential, Bayesian and
// non-inferiority results.
func compareWithOptions(t *experiment.Test, spec experiment.Metric, data Data, control, treatment arm, variantID string) experiment.Comparison {
	var cu *experiment.CUPEDResult
	if cd, ok := data.CUPED[spec.Name]; ok && spec.Type == experiment.MetricContinuous && spec.WinsorizePercentile == nil {
		control, treatment, cu = cupedArms(t, cd, control, treatment, variantID)
	}
	var c experiment.Comparison
	if spec.Type == experiment.MetricRatio {
		c = compareRatio(t, spec, control, treatment, variantID)
	} else {
		c = compare(t, spec, control, treatment, variantID)
	}
	c.CUPED = cu
	if spec.Type == experiment.MetricRatio && c.PValue == nil {
		// No users, or a zero denominator: the arms hold no usable ratio.
		return withoutTest(t, spec, c)
	}
	c.Sequential = sequentialResult(t, spec, control, treatment)
	c.Bayesian = bayesianResult(t, spec, control, treatment)
	c.NonInferiority = nonInferiorityResult(t, spec, control, treatment, variantID)
	return c
}

// withoutTest fills the blocks the test asks for with the reason why no
// test was possible (c.Note).
func withoutTest(t *experiment.Test, spec experiment.Metric, c experiment.Comparison) experiment.Comparison {
	if t.Sequential() {
		c.Sequential = &experiment.SequentialResult{Method: SequentialMethod, TuningN: t.TuningN(), Note: c.Note}
	}
	if b := t.Bayesian; b != nil && b.Enabled {
		c.Bayesian = &experiment.BayesianResult{Effect: "relative", Prior: b.Prior, RiskThreshold: b.RiskThreshold,
			Decision: string(stats.DecisionKeepRunning), Message: "no posterior yet: " + c.Note}
	}
	if m := spec.NonInferiorityMargin; m != nil {
		c.NonInferiority = &experiment.NonInferiorityResult{Margin: *m, MarginType: spec.NonInferiorityMarginType, Test: NonInferiorityWelch,
			Alpha: alphaOf(t), Message: fmt.Sprintf("non-inferiority of variant %s on %s is not shown: %s", c.VariantID, spec.Name, c.Note)}
		if t.Sequential() {
			c.NonInferiority.Test = NonInferioritySequential
		}
	}
	return c
}

// direction maps a metric's direction onto stats'.
func direction(d experiment.Direction) stats.Direction {
	if d == experiment.DirectionDecrease {
		return stats.LowerIsBetter
	}
	return stats.HigherIsBetter
}

func noTestNote(err error) string {
	switch {
	case errors.Is(err, stats.ErrInsufficientData):
		return "each variant needs at least 2 users for a test"
	case errors.Is(err, stats.ErrZeroVariance):
		return "zero variance: no test is possible"
	case errors.Is(err, stats.ErrZeroControlMean):
		return "the control mean is 0: the relative lift is undefined"
	}
	return err.Error()
}

// alphaOf returns 1 - confidence level without the rounding noise of the
// subtraction (0.05, not 0.050000000000000044).
func alphaOf(t *experiment.Test) float64 {
	a, _ := strconv.ParseFloat(strconv.FormatFloat(1-t.ConfidenceLevel, 'g', 12, 64), 64)
	return a
}

// adjust fills the adjusted p-values of a metric's comparisons.
func adjust(t *experiment.Test, cs []experiment.Comparison) {
	ps := make([]float64, len(cs))
	for i, c := range cs {
		ps[i] = math.NaN()
		if c.PValue != nil {
			ps[i] = *c.PValue
		}
	}
	adj, err := stats.AdjustPValues(ps, t.Correction())
	if err != nil {
		return // p-values come from our own tests; unreachable
	}
	for i := range cs {
		if !math.IsNaN(adj[i]) {
			cs[i].PValueAdjusted = ptr(adj[i])
			cs[i].SignificantAdjusted = adj[i] < 1-t.ConfidenceLevel
		}
	}
}

// decide picks the metric's winner on the adjusted p-values. Every variant
// must have reached the minimum sample size. A treatment wins when it is
// significantly better than control in the metric's direction (the best such
// treatment); control wins when every treatment is significantly worse.
// Otherwise there is no winner.
func decide(t *experiment.Test, m experiment.MetricReport) (*string, string, string) {
	total := int64(0)
	for _, v := range m.Variants {
		total += v.SampleSize
	}
	if total == 0 {
		return nil, experiment.DecisionNoData, fmt.Sprintf("no results recorded for metric %s yet", m.Metric)
	}
	for _, v := range m.Variants {
		if v.SampleSize < t.MinSampleSize {
			return nil, experiment.DecisionInsufficientSample,
				fmt.Sprintf("variant %s has %d of the %d users needed", v.VariantID, v.SampleSize, t.MinSampleSize)
		}
	}
	sign := 1.0
	if m.Direction == experiment.DirectionDecrease {
		sign = -1
	}
	var best *experiment.Comparison
	allWorse := len(m.Comparisons) > 0
	for i := range m.Comparisons {
		c := &m.Comparisons[i]
		if sig, _ := decisive(t, c); !sig || c.AbsoluteDifference == nil || *c.AbsoluteDifference == 0 {
			allWorse = false
			continue
		}
		if *c.Better {
			allWorse = false
			if best == nil || sign**c.AbsoluteDifference > sign**best.AbsoluteDifference {
				best = c
			}
		}
	}
	alpha := 1 - t.ConfidenceLevel
	word := "higher"
	if sign < 0 {
		word = "lower"
	}
	kind := "adjusted"
	if t.Sequential() {
		kind = "always-valid adjusted"
	}
	switch {
	case best != nil:
		_, p := decisive(t, best)
		return ptr(best.VariantID), experiment.DecisionWinner,
			fmt.Sprintf("variant %s beats control %s on %s (%s is better; %s p = %.3g < %.3g)",
				best.VariantID, t.ControlVariantID, m.Metric, word, kind, *p, alpha)
	case allWorse:
		return ptr(t.ControlVariantID), experiment.DecisionWinner,
			fmt.Sprintf("control %s beats every other variant on %s at %s p < %.3g", t.ControlVariantID, m.Metric, kind, alpha)
	}
	pvalues := "p-values"
	if t.Sequential() {
		pvalues = "always-valid p-values"
	}
	return nil, experiment.DecisionNotSignificant,
		fmt.Sprintf("no variant differs from control %s on %s at the %.3g confidence level (%s adjusted by %s)",
			t.ControlVariantID, m.Metric, t.ConfidenceLevel, pvalues, t.Correction())
}

// srmCheck tests the assigned users per variant against the traffic split.
func srmCheck(t *experiment.Test, assigned map[string]int64) *experiment.SRMCheck {
	obs := make([]int64, len(t.Variants))
	weights := make([]float64, len(t.Variants))
	for i, v := range t.Variants {
		obs[i], weights[i] = assigned[v.ID], v.TrafficPercentage
	}
	g, err := stats.ChiSquareGOF(obs, weights)
	if err != nil {
		return nil
	}
	s := &experiment.SRMCheck{
		Method:    SRMChiSquare,
		ChiSquare: g.ChiSquare, DegreesOfFreedom: g.DoF, PValue: g.PValue, Threshold: SRMThreshold,
		Detected: g.PValue < SRMThreshold,
		Observed: make(map[string]int64, len(obs)), Expected: make(map[string]float64, len(obs)),
	}
	if t.Sequential() {
		if q, err := stats.SequentialSRMTest(obs, weights, 0); err == nil {
			s.Method, s.ChiSquarePValue, s.LogBayesFactor = SRMSequential, ptr(g.PValue), ptr(q.LogBayesFactor)
			s.PValue, s.Detected = q.PValue, q.PValue < SRMThreshold
		}
	}
	var got, want []string
	for i, v := range t.Variants {
		s.Observed[v.ID], s.Expected[v.ID] = obs[i], g.Expected[i]
		got = append(got, fmt.Sprintf("%s %d", v.ID, obs[i]))
		want = append(want, fmt.Sprintf("%s %.0f", v.ID, g.Expected[i]))
	}
	if s.Detected {
		s.Message = fmt.Sprintf("Sample ratio mismatch: the variants received %s users, but the traffic split expects about %s "+
			"(chance of a gap this large by luck: p = %.2g). Assignment or event logging is likely broken, so the results "+
			"cannot be trusted and no winner is declared until the cause is found.",
			strings.Join(got, ", "), strings.Join(want, ", "), s.PValue)
	} else {
		s.Message = fmt.Sprintf("Users per variant match the traffic split (p = %.2g).", s.PValue)
	}
	if s.Method == SRMSequential {
		s.Message += " The check is sequential: it stays valid however often the test is looked at."
	}
	return s
}

// guardrailViolations lists treatments significantly worse than control on
// a guardrail metric (raw p-values).
func guardrailViolations(t *experiment.Test, ms []experiment.MetricReport) []experiment.GuardrailViolation {
	out := []experiment.GuardrailViolation{}
	for _, m := range ms {
		// A guardrail with a non-inferiority margin is judged by its
		// one-sided test instead (nonInferiorityNotShown).
		if m.Role != experiment.RoleGuardrail || m.NonInferiorityMargin != nil {
			continue
		}
		for _, c := range m.Comparisons {
			sig, p := c.Significant, c.PValue
			if t.Sequential() {
				sig, p = false, nil
				if s := c.Sequential; s != nil {
					sig, p = s.Significant, s.PValue
				}
			}
			if sig && c.Better != nil && !*c.Better && c.AbsoluteDifference != nil && *c.AbsoluteDifference != 0 {
				out = append(out, experiment.GuardrailViolation{
					Metric: m.Metric, VariantID: c.VariantID, PValue: *p,
					Message: fmt.Sprintf("variant %s is significantly worse than control on guardrail metric %s (p = %.3g)", c.VariantID, m.Metric, *p),
				})
			}
		}
	}
	return out
}

// verdict gates the primary metric's decision with the health checks.
func verdict(t *experiment.Test, primary experiment.MetricReport, h experiment.Health) experiment.Verdict {
	if h.SRM != nil && h.SRM.Detected {
		return experiment.Verdict{Code: experiment.DecisionSRM, Message: h.SRM.Message}
	}
	v := experiment.Verdict{WinnerVariantID: primary.WinnerVariantID, Code: primary.Decision, Message: primary.Reason}
	if v.WinnerVariantID == nil || *v.WinnerVariantID == t.ControlVariantID {
		return v
	}
	for _, g := range h.GuardrailViolations {
		if g.VariantID == *v.WinnerVariantID {
			return experiment.Verdict{Code: experiment.DecisionGuardrail,
				Message: fmt.Sprintf("%s, but %s: no winner is declared", primary.Reason, g.Message)}
		}
	}
	for _, g := range h.NonInferiorityNotShown {
		if g.VariantID == *v.WinnerVariantID {
			return experiment.Verdict{Code: experiment.DecisionNonInferiority,
				Message: fmt.Sprintf("%s, but %s: no winner is declared", primary.Reason, g.Message)}
		}
	}
	return v
}

func ptr[T any](v T) *T { return &v }
