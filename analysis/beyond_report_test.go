package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
)

// TestReportBeyond builds the report from what ClickHouse returned for the
// fixture of TestLoadBeyond and checks each new block against the pure
// functions of analysis/stats applied to the per-user data computed in Go.
func TestReportBeyond(t *testing.T) {
	f := newBeyondFixture().insert(t)
	def, want := f.def, f.expected()
	rep := BuildReport(def, f.loaded, time.Now())
	level := def.ConfidenceLevel
	seqCfg := stats.SequentialConfig{Alpha: 1 - level, TuningN: experiment.DefaultSequentialTuningN}
	metric := func(name string) experiment.MetricReport {
		for _, m := range rep.Metrics {
			if m.Metric == name {
				return m
			}
		}
		t.Fatalf("report has no metric %s", name)
		return experiment.MetricReport{}
	}
	if rep.AnalysisMethod != experiment.MethodSequential || rep.SequentialTuningN == nil || *rep.SequentialTuningN != 5000 {
		t.Errorf("analysis_method %q tuning %v, want sequential 5000", rep.AnalysisMethod, rep.SequentialTuningN)
	}

	// Primary metric revenue: CUPED from recorded covariates, and every
	// result on the adjusted arms.
	rev := metric("revenue").Comparisons[0]
	cu, err := stats.CUPEDTest(want.CUPED["revenue"].Arms["a"], want.CUPED["revenue"].Arms["b"], level)
	if err != nil {
		t.Fatal(err)
	}
	if rev.CUPED == nil || rev.CUPED.Source != CUPEDFromCovariates || !statstest.ClosePtr(&rev.CUPED.VarianceReduction, cu.VarianceReduction) ||
		!statstest.ClosePtr(&rev.CUPED.Theta, cu.Theta) || !statstest.ClosePtr(rev.CUPED.UnadjustedPValue, cu.Unadjusted.PValue) {
		t.Errorf("revenue cuped = %+v, want CUPEDTest's theta %v, reduction %v", rev.CUPED, cu.Theta, cu.VarianceReduction)
	}
	if !statstest.ClosePtr(rev.AbsoluteDifference, cu.Welch.Diff) || !statstest.ClosePtr(rev.PValue, cu.Welch.PValue) || !statstest.ClosePtr(rev.ConfidenceIntervalLower, cu.Welch.CILower) {
		t.Errorf("revenue difference %v p %v, want the adjusted %v p %v", deref(rev.AbsoluteDifference), deref(rev.PValue), cu.Welch.Diff, cu.Welch.PValue)
	}
	seq, _ := stats.SequentialMeans(cu.Control, cu.Treatment, seqCfg)
	if s := rev.Sequential; s == nil || s.Method != SequentialMethod || !statstest.ClosePtr(s.PValue, seq.PValue) ||
		!statstest.ClosePtr(s.ConfidenceSequenceLower, seq.Lower) || !statstest.ClosePtr(s.ConfidenceSequenceUpper, seq.Upper) {
		t.Errorf("revenue sequential = %+v, want p %v CS (%v, %v)", rev.Sequential, seq.PValue, seq.Lower, seq.Upper)
	}
	bay, _ := stats.BayesMeans(cu.Control, cu.Treatment, stats.BayesConfig{Relative: true, Level: level})
	if b := rev.Bayesian; b == nil || !statstest.ClosePtr(b.ChanceToBeatControl, bay.ChanceToWin) || !statstest.ClosePtr(b.RiskTreatment, bay.RiskTreatment) ||
		!statstest.ClosePtr(b.CredibleIntervalLower, bay.CILower) || b.Decision != string(bay.Decision) || b.RiskThreshold != experiment.DefaultRiskThreshold {
		t.Errorf("revenue bayesian = %+v, want chance %v risk %v decision %s", rev.Bayesian, bay.ChanceToWin, bay.RiskTreatment, bay.Decision)
	}
	t.Logf("revenue: CUPED theta %.4f, variance reduction %.3f; fixed p %.3g (unadjusted %.3g), always-valid p %.3g; chance to beat control %.4f, decision %s",
		cu.Theta, cu.VarianceReduction, cu.Welch.PValue, cu.Unadjusted.PValue, seq.PValue, bay.ChanceToWin, bay.Decision)

	// Ratio metric.
	rps := metric("rps")
	rc, err := stats.CompareRatios(want.Ratios["rps"]["a"], want.Ratios["rps"]["b"], level)
	if err != nil {
		t.Fatal(err)
	}
	c := rps.Comparisons[0]
	if rps.Test != TestRatio || rps.Numerator != "revenue" || rps.Denominator != "sessions" ||
		!statstest.ClosePtr(c.AbsoluteDifference, rc.Diff) || !statstest.ClosePtr(c.PValue, rc.PValue) || !statstest.ClosePtr(c.ZStatistic, rc.Z) ||
		!statstest.ClosePtr(c.ConfidenceIntervalUpper, rc.CIUpper) || !statstest.ClosePtr(c.RelativeCILower, rc.Lift.Lower) {
		t.Errorf("rps = %s %+v, want CompareRatios %+v", rps.Test, c, rc)
	}
	if v := rps.Variants[1]; v.Ratio == nil || !statstest.ClosePtr(v.MeanValue, rc.Treatment) || !statstest.ClosePtr(v.Ratio.RatioVariance, rc.TreatmentVariance) {
		t.Errorf("rps/b = %+v, want ratio %v variance %v", v, rc.Treatment, rc.TreatmentVariance)
	}
	t.Logf("rps: %.4f vs %.4f, delta-method z %.3f, p %.3g", rc.Control, rc.Treatment, rc.Z, rc.PValue)

	// Guardrail latency: CUPED from the lookback window, and the
	// non-inferiority test on the adjusted arms.
	lat := metric("latency").Comparisons[0]
	lc, err := stats.CUPEDTest(want.CUPED["latency"].Arms["a"], want.CUPED["latency"].Arms["b"], level)
	if err != nil {
		t.Fatal(err)
	}
	// Sequential test: the time-uniform bound of the 1-2α confidence
	// sequence of the difference shifted by the margin.
	margin := 0.05 * math.Abs(lc.Control.Mean)
	shifted := lc.Treatment
	shifted.Mean -= margin
	sq, _ := stats.SequentialMeans(lc.Control, shifted, stats.SequentialConfig{Alpha: 2 * (1 - level), TuningN: 5000})
	ni := stats.NonInferiority{Margin: margin, PValue: sq.PValue / 2, Bound: sq.Upper + margin, NotWorse: sq.Upper < 0}
	if sq.Diff > 0 {
		ni.PValue = 1 - sq.PValue/2
	}
	if lat.CUPED == nil || lat.CUPED.Source != CUPEDFromLookback || lat.CUPED.Lookback != "14d" || !statstest.ClosePtr(&lat.CUPED.VarianceReduction, lc.VarianceReduction) {
		t.Errorf("latency cuped = %+v, want lookback 14d, reduction %v", lat.CUPED, lc.VarianceReduction)
	}
	if n := lat.NonInferiority; n == nil || n.NotWorse != ni.NotWorse || !statstest.ClosePtr(n.PValue, ni.PValue) || !statstest.ClosePtr(n.Bound, ni.Bound) ||
		!statstest.ClosePtr(n.AbsoluteMargin, ni.Margin) || n.Test != NonInferioritySequential {
		t.Errorf("latency non_inferiority = %+v, want %+v", lat.NonInferiority, ni)
	}
	t.Logf("latency: CUPED (lookback) variance reduction %.3f; non-inferiority margin %.3g, one-sided p %.3g, not worse %v",
		lc.VarianceReduction, ni.Margin, ni.PValue, ni.NotWorse)

	// Segments: per platform Welch tests with p-values adjusted over the
	// four segments, and the heterogeneity scan.
	if len(rep.Segments) != 1 || rep.Segments[0].Attribute != "platform" || len(rep.Segments[0].Segments) != 4 {
		t.Fatalf("segments = %+v, want platform with 4 values", rep.Segments)
	}
	var ps []float64
	var effects []stats.SegmentEffect
	for _, s := range rep.Segments[0].Segments {
		a, b := want.Segments["platform"].Continuous[s.Value]["a"], want.Segments["platform"].Continuous[s.Value]["b"]
		w, err := stats.WelchTTest(a, b, level)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.Comparisons[0]; !statstest.ClosePtr(c.PValue, w.PValue) || !statstest.ClosePtr(c.AbsoluteDifference, w.Diff) {
			t.Errorf("segment %s = %+v, want Welch p %v", s.Value, c, w.PValue)
		}
		ps = append(ps, w.PValue)
		effects = append(effects, stats.SegmentEffect{Name: s.Value, Effect: w.Diff, StdErr: w.StdErr})
	}
	adj, _ := stats.AdjustPValues(ps, stats.CorrectionHolm)
	for i, s := range rep.Segments[0].Segments {
		if !statstest.ClosePtr(s.Comparisons[0].PValueAdjusted, adj[i]) {
			t.Errorf("segment %s adjusted p = %v, want Holm over 4 segments %v", s.Value, deref(s.Comparisons[0].PValueAdjusted), adj[i])
		}
	}
	scan, _ := stats.ScanSegments(effects, 1-level, stats.CorrectionHolm)
	h := rep.Segments[0].Heterogeneity[0]
	if !statstest.ClosePtr(h.Q, scan.Q) || !statstest.ClosePtr(h.QPValue, scan.QPValue) || len(h.Segments) != 4 || !statstest.ClosePtr(&h.Segments[0].PValueAdjusted, scan.Segments[0].AdjustedPValue) {
		t.Errorf("heterogeneity = %+v, want Q %v p %v", h, scan.Q, scan.QPValue)
	}

	// Sequential SRM.
	srm, _ := stats.SequentialSRMTest([]int64{400, 400}, []float64{50, 50}, 0)
	if s := rep.Health.SRM; s == nil || s.Method != SRMSequential || !statstest.ClosePtr(&s.PValue, srm.PValue) || s.ChiSquarePValue == nil {
		t.Errorf("srm = %+v, want sequential p %v", rep.Health.SRM, srm.PValue)
	}
	// The whole report encodes (no NaN).
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("encoding the report: %v", err)
	}
}

// TestVerdictBeyond checks the decision rules of the new options on
// sufficient statistics.
func TestVerdictBeyond(t *testing.T) {
	s := func(n int64, mean, sd float64) stats.Sample { return stats.Sample{N: n, Mean: mean, Variance: sd * sd} }
	balanced := map[string]int64{"control": 2000, "b": 2000}
	margin := func(m float64) *float64 { return &m }
	sequential := func(d *experiment.Test) *experiment.Test {
		d.AnalysisMethod = experiment.MethodSequential
		d.SetDefaults()
		return d
	}
	// Significant at a fixed horizon (p = 0.0032) but not under
	// continuous monitoring at N = 4000.
	peek := map[string]stats.Sample{"control": s(2000, 10, 3), "b": s(2000, 10.28, 3)}
	tests := []struct {
		name       string
		def        *experiment.Test
		data       Data
		wantWinner string
		wantCode   string
		wantIn     string
	}{
		{
			name: "fixed horizon decides on the fixed p-value", def: twoArmDef(),
			data:       Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{"m": peek}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "sequential decides on the always-valid p-value", def: sequential(twoArmDef()),
			data:     Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{"m": peek}},
			wantCode: experiment.DecisionNotSignificant, wantIn: "always-valid",
		},
		{
			name: "sequential winner", def: sequential(twoArmDef()),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2000, 10.6, 3)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner, wantIn: "always-valid adjusted p",
		},
		{
			name: "guardrail within its margin lets the winner through, though significantly worse",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.05)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(2000, 10, 3), "b": s(2000, 11, 3)},
				"latency": {"control": s(2000, 200, 10), "b": s(2000, 202, 10)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "guardrail beyond its margin withholds the winner",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.005)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(2000, 10, 3), "b": s(2000, 11, 3)},
				"latency": {"control": s(2000, 200, 10), "b": s(2000, 200.5, 10)}}},
			wantCode: experiment.DecisionNonInferiority, wantIn: "not shown to be within the margin 0.5% of the control mean (1)",
		},
		{
			name: "guardrail within its margin at a fixed horizon",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.015)}),
			data: Data{Assignments: map[string]int64{"control": 300, "b": 300}, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(300, 10, 3), "b": s(300, 12, 3)},
				"latency": {"control": s(300, 200, 10), "b": s(300, 201, 10)}}},
			wantWinner: "b", wantCode: experiment.DecisionWinner,
		},
		{
			name: "the same guardrail not yet shown within its margin under continuous monitoring",
			def: sequential(twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.015)})),
			data: Data{Assignments: map[string]int64{"control": 300, "b": 300}, Metrics: map[string]map[string]stats.Sample{
				"m":       {"control": s(300, 10, 3), "b": s(300, 12, 3)},
				"latency": {"control": s(300, 200, 10), "b": s(300, 201, 10)}}},
			wantCode: experiment.DecisionNonInferiority, wantIn: "always-valid one-sided p",
		},
		{
			name: "guardrail without data withholds the winner when it has a margin",
			def: twoArmDef(experiment.Metric{Name: "m"},
				experiment.Metric{Name: "latency", Role: experiment.RoleGuardrail, Direction: experiment.DirectionDecrease, NonInferiorityMargin: margin(0.05)}),
			data: Data{Assignments: balanced, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2000, 11, 3)}}},
			wantCode: experiment.DecisionNonInferiority,
		},
		{
			name: "sequential SRM",
			def:  sequential(twoArmDef()),
			data: Data{Assignments: map[string]int64{"control": 2000, "b": 2300}, Metrics: map[string]map[string]stats.Sample{
				"m": {"control": s(2000, 10, 3), "b": s(2300, 11, 3)}}},
			wantCode: experiment.DecisionSRM, wantIn: "stays valid however often",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.def.Validate(); err != nil {
				t.Fatal(err)
			}
			r := BuildReport(tt.def, tt.data, time.Now())
			winner := ""
			if r.Verdict.WinnerVariantID != nil {
				winner = *r.Verdict.WinnerVariantID
			}
			if winner != tt.wantWinner || r.Verdict.Code != tt.wantCode || !strings.Contains(r.Verdict.Message+r.Reason, tt.wantIn) {
				t.Errorf("verdict = %q %s %q, want %q %s containing %q", winner, r.Verdict.Code, r.Verdict.Message, tt.wantWinner, tt.wantCode, tt.wantIn)
			}
			if tt.def.Sequential() != (r.Metrics[0].Comparisons[0].Sequential != nil) {
				t.Errorf("sequential block = %+v on a %s test", r.Metrics[0].Comparisons[0].Sequential, tt.def.Method())
			}
		})
	}
}

// TestBayesianBinary checks the Bayesian block of a binary metric against
// STATS.md's example: 100/1000 against 130/1000, flat prior, chance to win
// 0.967 on the relative lift.
func TestBayesianBinary(t *testing.T) {
	def := twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricBinary})
	def.Bayesian = &experiment.Bayesian{Enabled: true}
	def.SetDefaults()
	r := BuildReport(def, Data{Assignments: map[string]int64{"control": 1000, "b": 1000},
		Binary: map[string]map[string]stats.Proportion{"m": {"control": {N: 1000, Successes: 100}, "b": {N: 1000, Successes: 130}}}}, time.Now())
	b := r.Metrics[0].Comparisons[0].Bayesian
	if b == nil || b.ChanceToBeatControl == nil || math.Abs(*b.ChanceToBeatControl-0.967) > 5e-4 || b.Effect != "relative" {
		t.Fatalf("bayesian = %+v, want chance to win 0.967", b)
	}
	if !strings.Contains(b.Message, "not a p-value") {
		t.Errorf("message %q does not tell a chance from a p-value", b.Message)
	}
}

func TestPoolSmallSegments(t *testing.T) {
	sd := SegmentData{Continuous: map[string]map[string]stats.Sample{}, Binary: map[string]map[string]stats.Proportion{}}
	for i := range 25 {
		sd.Continuous[fmt.Sprintf("v%02d", i)] = map[string]stats.Sample{"a": {N: int64(100 - i), Mean: 1, Variance: 1}}
	}
	sd.Continuous[SegmentNone] = map[string]stats.Sample{"a": {N: 1, Mean: 1}}
	poolSmallSegments(&sd, 20)
	if len(sd.Continuous) != 22 || sd.Continuous[SegmentOther]["a"].N != 80+79+78+77+76 || sd.Continuous[SegmentNone] == nil {
		t.Errorf("pooled segments: %d values, (other) %+v", len(sd.Continuous), sd.Continuous[SegmentOther])
	}
	def := twoArmDef()
	def.Segments = []string{"a", "b", "c", "d", "e"}
	def.Variants = nil
	for i := range 50 {
		def.Variants = append(def.Variants, experiment.Variant{ID: fmt.Sprintf("v%d", i), TrafficPercentage: 2})
	}
	if got := segmentValueLimit(def); got != 2 {
		t.Errorf("segmentValueLimit(5 attributes, 49 treatments) = %d, want 2", got)
	}
	if got := segmentValueLimit(twoArmDef()); got != MaxSegmentValues {
		t.Errorf("segmentValueLimit(two arms) = %d, want %d", got, MaxSegmentValues)
	}
}

// TestAAPeekingThroughReports runs A/A tests looked at after every batch of
// users (20 looks) through BuildReport, and counts the tests whose verdict
// ever names a winner: at a fixed horizon peeking inflates that rate far
// above alpha, with analysis_method sequential it stays at or below alpha.
// The decision wiring (always-valid p-values, their adjustment, the verdict)
// is what is under test; analysis/stats proves the sequence itself.
func TestAAPeekingThroughReports(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const sims, looks, batch, alpha = 1000, 20, 100, 0.05
	rng := rand.New(rand.NewPCG(7, 8))
	fixed := twoArmDef()
	fixed.MinSampleSize = 2
	seq := twoArmDef()
	seq.MinSampleSize = 2
	seq.AnalysisMethod = experiment.MethodSequential
	seq.SetDefaults()
	var fixedHits, seqHits int
	for range sims {
		var a, b stats.Sample
		var fixedWon, seqWon bool
		for look := range looks {
			a = stats.Combine(a, normalArm(rng, batch, 10, 3))
			b = stats.Combine(b, normalArm(rng, batch, 10, 3))
			n := int64((look + 1) * batch)
			d := Data{Assignments: map[string]int64{"control": n, "b": n}, Metrics: map[string]map[string]stats.Sample{"m": {"control": a, "b": b}}}
			if !fixedWon && BuildReport(fixed, d, time.Time{}).Verdict.WinnerVariantID != nil {
				fixedWon = true
			}
			if !seqWon && BuildReport(seq, d, time.Time{}).Verdict.WinnerVariantID != nil {
				seqWon = true
			}
		}
		if fixedWon {
			fixedHits++
		}
		if seqWon {
			seqHits++
		}
	}
	tol := 4 * math.Sqrt(alpha*(1-alpha)/sims)
	fr, sr := float64(fixedHits)/sims, float64(seqHits)/sims
	t.Logf("A/A with %d looks: a winner is ever declared in %.3f of tests at a fixed horizon, %.3f with the sequential test (alpha %.2f)", looks, fr, sr, alpha)
	if sr > alpha+tol {
		t.Errorf("sequential: winner ever declared in %.3f of A/A tests, want at most %.2f (+%.3f)", sr, alpha, tol)
	}
	if fr <= alpha+tol {
		t.Errorf("fixed horizon: winner ever declared in %.3f of A/A tests; peeking should inflate it well above %.2f", fr, alpha)
	}
}

// TestRatioWithoutDenominator: a variant without any denominator has no
// ratio; every block says so instead of testing a ratio of 0.
func TestRatioWithoutDenominator(t *testing.T) {
	def := twoArmDef(experiment.Metric{Name: "m", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "sessions"},
		experiment.Metric{Name: "rpo", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "orders", Role: experiment.RoleGuardrail, NonInferiorityMargin: ptr(0.1)})
	def.AnalysisMethod, def.Bayesian = experiment.MethodSequential, &experiment.Bayesian{Enabled: true}
	def.SetDefaults()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	ok := stats.RatioSample{N: 500, NumeratorMean: 10, NumeratorVariance: 4, DenominatorMean: 2, DenominatorVariance: 1, Covariance: 1}
	none := stats.RatioSample{N: 500, NumeratorMean: 10, NumeratorVariance: 4}
	r := BuildReport(def, Data{Assignments: map[string]int64{"control": 500, "b": 500},
		Ratios: map[string]map[string]stats.RatioSample{"m": {"control": ok, "b": ok}, "rpo": {"control": none, "b": ok}}}, time.Now())
	if c := r.Metrics[0].Comparisons[0]; c.PValue == nil || c.Sequential == nil || c.Sequential.PValue == nil {
		t.Errorf("m = %+v, want a test", c)
	}
	c := r.Metrics[1].Comparisons[0]
	if c.PValue != nil || c.Sequential == nil || c.Sequential.PValue != nil || c.Bayesian == nil || c.Bayesian.ChanceToBeatControl != nil ||
		c.NonInferiority == nil || c.NonInferiority.NotWorse || !strings.Contains(c.Note, "orders is 0") {
		t.Errorf("rpo = %+v, want no test and the reason", c)
	}
	if r.Verdict.Code != experiment.DecisionNotSignificant && r.Verdict.Code != experiment.DecisionNonInferiority {
		t.Errorf("verdict %s", r.Verdict.Code)
	}
}
