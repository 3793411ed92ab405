package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// optionsFixture is what TestLoadOptions inserts, kept in Go so that the
// expected per-user data can be computed without ClickHouse.
type optionsFixture struct {
	def     *experiment.Test
	variant map[string]string // user -> variant
	segment map[string]string // user -> latest platform ("" when none)
	// events of this test: id -> user and metric values, covariates.
	events []fixtureEvent
	// prior[user] holds the user's latency values in another test inside
	// the lookback window.
	prior map[string][]float64
	// loaded is what load read back.
	loaded Data
}

type fixtureEvent struct {
	id, user   string
	metrics    map[string]float64
	covariates map[string]float64
}

func newOptionsFixture() *optionsFixture {
	started := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	def := &experiment.Test{
		ID: "options", Name: "options", Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "revenue",
		Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		Metrics: []experiment.Metric{
			{Name: "rps", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "sessions"},
			{Name: "latency", Direction: experiment.DirectionDecrease, Role: experiment.RoleGuardrail, NonInferiorityMargin: ptr(0.05)},
		},
		AnalysisMethod: experiment.MethodSequential,
		Bayesian:       &experiment.Bayesian{Enabled: true},
		CUPED:          &experiment.CUPED{Enabled: true, Lookback: "14d"},
		Segments:       []string{"platform"},
		Status:         experiment.StatusRunning, StartedAt: &started,
	}
	def.SetDefaults()
	f := &optionsFixture{def: def, variant: map[string]string{}, segment: map[string]string{}, prior: map[string][]float64{}}
	rng := rand.New(rand.NewPCG(5, 6))
	platforms := []string{"ios", "android", "web"}
	for u := range 800 {
		user := fmt.Sprintf("u%d", u)
		v := []string{"a", "b"}[u%2]
		f.variant[user] = v
		if u%5 != 0 {
			f.segment[user] = platforms[rng.IntN(3)]
		}
		pre := 100 + 20*rng.NormFloat64() // the user's level, seen before and during the test
		if u%3 != 0 {
			f.prior[user] = []float64{pre + rng.NormFloat64(), pre + rng.NormFloat64()}
		}
		for e := range 1 + rng.IntN(3) {
			ev := fixtureEvent{id: fmt.Sprintf("%s-e%d", user, e), user: user, metrics: map[string]float64{}, covariates: map[string]float64{}}
			lift := 0.0
			if v == "b" {
				lift = 3
			}
			ev.metrics["revenue"] = math.Round((pre/10+lift+5*rng.NormFloat64())*100) / 100
			if rng.IntN(4) != 0 {
				ev.metrics["sessions"] = float64(1 + rng.IntN(5))
				ev.covariates["revenue"] = math.Round(pre) / 10
			}
			ev.metrics["latency"] = pre + 10*rng.NormFloat64()
			f.events = append(f.events, ev)
		}
	}
	return f
}

// insert stores the fixture, with every event of every tenth user stored
// twice (redeliveries), in all four tables.
func (f *optionsFixture) insert(t *testing.T) *optionsFixture {
	conn, _ := chdbtest.Conn(t)
	ctx := t.Context()
	start := *f.def.StartedAt
	res, err := conn.PrepareBatch(ctx, "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	cov, err := conn.PrepareBatch(ctx, "INSERT INTO result_covariates (test_id, variant_id, user_id, metric, covariate, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range f.events {
		copies := 1
		if i%10 == 0 {
			copies = 2
		}
		for range copies {
			for m, v := range ev.metrics {
				if err := res.Append(f.def.ID, f.variant[ev.user], ev.user, m, v, ev.id, start.Add(time.Hour), uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			for m, x := range ev.covariates {
				if err := cov.Append(f.def.ID, f.variant[ev.user], ev.user, m, x, ev.id, start.Add(time.Hour), uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The other test: inside the window, before it, and after the start.
	for user, xs := range f.prior {
		for j, x := range xs {
			if err := res.Append("earlier", "x", user, "latency", x, fmt.Sprintf("p-%s-%d", user, j), start.Add(-time.Duration(j+1)*24*time.Hour), uint64(0)); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{start.Add(-20 * 24 * time.Hour), start.Add(time.Hour)} {
			if err := res.Append("earlier", "x", user, "latency", 1e6, "out-"+user+at.String(), at, uint64(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := res.Send(); err != nil {
		t.Fatal(err)
	}
	if err := cov.Send(); err != nil {
		t.Fatal(err)
	}
	as, err := conn.PrepareBatch(ctx, "INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := conn.PrepareBatch(ctx, "INSERT INTO assignment_attributes (test_id, variant_id, user_id, attribute_keys, attribute_values, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	for user, v := range f.variant {
		if err := as.Append(f.def.ID, v, user, "a-"+user, start, uint64(0)); err != nil {
			t.Fatal(err)
		}
		if p := f.segment[user]; p != "" {
			// An older assignment said otherwise: the latest one counts.
			if err := attrs.Append(f.def.ID, v, user, []string{"country", "platform"}, []string{"DE", "old"}, "a0-"+user, start.Add(-time.Minute), uint64(0)); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := attrs.Append(f.def.ID, v, user, []string{"country", "platform"}, []string{"DE", p}, "a-"+user, start, uint64(0)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := as.Send(); err != nil {
		t.Fatal(err)
	}
	if err := attrs.Send(); err != nil {
		t.Fatal(err)
	}
	data, err := load(ctx, conn, f.def)
	if err != nil {
		t.Fatal(err)
	}
	f.loaded = data
	return f
}

// perUser returns each user's per-metric list of values, covariates.
func (f *optionsFixture) perUser() (values map[string]map[string][]float64, covs map[string]map[string][]float64) {
	values, covs = map[string]map[string][]float64{}, map[string]map[string][]float64{}
	for _, ev := range f.events {
		if values[ev.user] == nil {
			values[ev.user], covs[ev.user] = map[string][]float64{}, map[string][]float64{}
		}
		for m, v := range ev.metrics {
			values[ev.user][m] = append(values[ev.user][m], v)
		}
		for m, x := range ev.covariates {
			covs[ev.user][m] = append(covs[ev.user][m], x)
		}
	}
	return values, covs
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// covariance is the unbiased sample covariance.
func covariance(xs, ys []float64) float64 {
	mx, my := mean(xs), mean(ys)
	var s float64
	for i := range xs {
		s += (xs[i] - mx) * (ys[i] - my)
	}
	return s / float64(len(xs)-1)
}

// expected computes in Go, from the fixture's rows, what load must return
// for the analyses beyond the fixed-horizon tests: ratio moments of the
// per-user sums, CUPED moments (a user without a covariate has 0) from the
// recorded covariates (revenue) and from the lookback window (latency),
// and the primary metric (revenue) by the latest platform.
func (f *optionsFixture) expected() Data {
	values, covs := f.perUser()
	users := make([]string, 0, len(values))
	for u := range values {
		users = append(users, u)
	}
	sort.Strings(users)
	d := Data{
		Metrics:  map[string]map[string]stats.Sample{},
		Ratios:   map[string]map[string]stats.RatioSample{"rps": {}},
		CUPED:    map[string]CUPEDData{},
		Segments: map[string]SegmentData{"platform": {Continuous: map[string]map[string]stats.Sample{}}},
	}
	for _, v := range []string{"a", "b"} {
		var num, den []float64
		for _, u := range users {
			if f.variant[u] == v {
				num = append(num, sum(values[u]["revenue"]))
				den = append(den, sum(values[u]["sessions"]))
			}
		}
		ns, ds := sampleOf(num), sampleOf(den)
		d.Ratios["rps"][v] = stats.RatioSample{N: ns.N, NumeratorMean: ns.Mean, NumeratorVariance: ns.Variance,
			DenominatorMean: ds.Mean, DenominatorVariance: ds.Variance, Covariance: covariance(num, den)}
	}
	for _, m := range []string{"revenue", "latency", "sessions"} {
		d.Metrics[m] = map[string]stats.Sample{}
		for _, v := range []string{"a", "b"} {
			var ys []float64
			for _, u := range users {
				if f.variant[u] == v && len(values[u][m]) > 0 {
					ys = append(ys, mean(values[u][m]))
				}
			}
			d.Metrics[m][v] = sampleOf(ys)
		}
	}
	sources := []struct {
		metric, source string
		x              func(u string) (float64, bool)
	}{
		{"revenue", CUPEDFromCovariates, func(u string) (float64, bool) {
			if xs := covs[u]["revenue"]; len(xs) > 0 {
				return mean(xs), true
			}
			return 0, false
		}},
		{"latency", CUPEDFromLookback, func(u string) (float64, bool) {
			if xs := f.prior[u]; len(xs) > 0 {
				return mean(xs), true
			}
			return 0, false
		}},
	}
	for _, c := range sources {
		cd := CUPEDData{Source: c.source, Arms: map[string]stats.CovariateSample{}, WithCovariate: map[string]int64{}}
		if c.source == CUPEDFromLookback {
			cd.Lookback = f.def.CUPED.Lookback
		}
		// A user without a covariate gets the mean of those with one.
		var known []float64
		for _, u := range users {
			if x, has := c.x(u); has {
				known = append(known, x)
			}
		}
		imputed := mean(known)
		for _, v := range []string{"a", "b"} {
			var xs, ys []float64
			for _, u := range users {
				if f.variant[u] != v {
					continue
				}
				x, has := c.x(u)
				if has {
					cd.WithCovariate[v]++
				} else {
					x = imputed
				}
				xs, ys = append(xs, x), append(ys, mean(values[u][c.metric]))
			}
			xsm, ysm := sampleOf(xs), sampleOf(ys)
			cd.Arms[v] = stats.CovariateSample{N: ysm.N, Mean: ysm.Mean, Variance: ysm.Variance,
				CovariateMean: xsm.Mean, CovariateVariance: xsm.Variance, Covariance: covariance(xs, ys)}
		}
		d.CUPED[c.metric] = cd
	}
	seg := d.Segments["platform"].Continuous
	for _, p := range []string{"ios", "android", "web", SegmentNone} {
		seg[p] = map[string]stats.Sample{}
		for _, v := range []string{"a", "b"} {
			var ys []float64
			for _, u := range users {
				up := f.segment[u]
				if up == "" {
					up = SegmentNone
				}
				if f.variant[u] == v && up == p {
					ys = append(ys, mean(values[u]["revenue"]))
				}
			}
			seg[p][v] = sampleOf(ys)
		}
	}
	return d
}

// TestLoadOptions stores users, attributes, results with covariates and a
// pre-period in ClickHouse (some events and attributes twice, values
// outside the lookback window, an outdated attribute) and checks that the
// queries return the statistics computed in Go from the same rows.
func TestLoadOptions(t *testing.T) {
	f := newOptionsFixture().insert(t)
	got, want := f.loaded, f.expected()
	for _, v := range []string{"a", "b"} {
		g, w := got.Ratios["rps"][v], want.Ratios["rps"][v]
		if g.N != w.N || !statstest.Close(g.NumeratorMean, w.NumeratorMean) || !statstest.Close(g.DenominatorMean, w.DenominatorMean) ||
			!statstest.Close(g.NumeratorVariance, w.NumeratorVariance) || !statstest.Close(g.DenominatorVariance, w.DenominatorVariance) ||
			!statstest.Close(g.Covariance, w.Covariance) {
			t.Errorf("ratio rps/%s = %+v, want %+v", v, g, w)
		}
	}
	for _, m := range []string{"revenue", "latency"} {
		gc, wc := got.CUPED[m], want.CUPED[m]
		if gc.Source != wc.Source || gc.Lookback != wc.Lookback {
			t.Errorf("CUPED[%s] source %q %q, want %q %q", m, gc.Source, gc.Lookback, wc.Source, wc.Lookback)
		}
		for _, v := range []string{"a", "b"} {
			g, w := gc.Arms[v], wc.Arms[v]
			if g.N != w.N || gc.WithCovariate[v] != wc.WithCovariate[v] || !statstest.Close(g.Mean, w.Mean) || !statstest.Close(g.Variance, w.Variance) ||
				!statstest.Close(g.CovariateMean, w.CovariateMean) || !statstest.Close(g.CovariateVariance, w.CovariateVariance) ||
				!statstest.Close(g.Covariance, w.Covariance) {
				t.Errorf("CUPED %s/%s = %+v (%d with covariate), want %+v (%d)", m, v, g, gc.WithCovariate[v], w, wc.WithCovariate[v])
			}
		}
	}
	if cd, ok := got.CUPED["sessions"]; ok {
		t.Errorf("CUPED[sessions] = %+v, want none: no user has sessions before the test", cd)
	}
	for p, arms := range want.Segments["platform"].Continuous {
		for v, w := range arms {
			g := got.Segments["platform"].Continuous[p][v]
			if g.N != w.N || !statstest.Close(g.Mean, w.Mean) || !statstest.Close(g.Variance, w.Variance) {
				t.Errorf("segment %s/%s = %+v, want %+v", p, v, g, w)
			}
		}
	}
	if n := len(got.Segments["platform"].Continuous); n != 4 {
		t.Errorf("platform has %d segments, want ios, android, web and (none): an outdated value counted", n)
	}
}

// BenchmarkLoadOptions measures load for a test of 100,000 users (300,000
// result events of 3 metrics, covariates on a third of them, attributes on
// every assignment) with every option of issue 5 (ratio metric, CUPED from
// covariates and from the lookback window, segments), against the same
// test without them.
func BenchmarkLoadOptions(b *testing.B) {
	conn, _ := chdbtest.Conn(b)
	ctx := b.Context()
	started := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	const users = 100_000
	res, err := conn.PrepareBatch(ctx, "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		b.Fatal(err)
	}
	cov, err := conn.PrepareBatch(ctx, "INSERT INTO result_covariates (test_id, variant_id, user_id, metric, covariate, event_id, event_time, stream_seq)")
	if err != nil {
		b.Fatal(err)
	}
	as, err := conn.PrepareBatch(ctx, "INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq)")
	if err != nil {
		b.Fatal(err)
	}
	attrs, err := conn.PrepareBatch(ctx, "INSERT INTO assignment_attributes (test_id, variant_id, user_id, attribute_keys, attribute_values, event_id, event_time, stream_seq)")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for u := range users {
		user, v := fmt.Sprintf("u%d", u), []string{"a", "b"}[u%2]
		if err := as.Append("big", v, user, "a-"+user, started, uint64(0)); err != nil {
			b.Fatal(err)
		}
		if err := attrs.Append("big", v, user, []string{"country", "platform"}, []string{fmt.Sprintf("c%d", u%30), []string{"ios", "android", "web"}[u%3]}, "a-"+user, started, uint64(0)); err != nil {
			b.Fatal(err)
		}
		if err := res.Append("earlier", "x", user, "latency", 100+rng.NormFloat64(), "p-"+user, started.Add(-24*time.Hour), uint64(0)); err != nil {
			b.Fatal(err)
		}
		for e := range 3 {
			id := fmt.Sprintf("%s-%d", user, e)
			for m, x := range map[string]float64{"revenue": rng.ExpFloat64() * 10, "sessions": float64(1 + rng.IntN(4)), "latency": 100 + rng.NormFloat64()} {
				if err := res.Append("big", v, user, m, x, id, started.Add(time.Hour), uint64(0)); err != nil {
					b.Fatal(err)
				}
			}
			if e == 0 {
				if err := cov.Append("big", v, user, "revenue", rng.ExpFloat64()*10, id, started.Add(time.Hour), uint64(0)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, batch := range []interface{ Send() error }{res, cov, as, attrs} {
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
	}
	plain := &experiment.Test{
		ID: "big", Name: "big", Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "revenue",
		Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		Status:   experiment.StatusRunning, StartedAt: &started,
	}
	plain.SetDefaults()
	full := *plain
	full.Metrics = []experiment.Metric{{Name: "rps", Type: experiment.MetricRatio, Numerator: "revenue", Denominator: "sessions"}}
	full.AnalysisMethod, full.Bayesian = experiment.MethodSequential, &experiment.Bayesian{Enabled: true}
	full.CUPED, full.Segments = &experiment.CUPED{Enabled: true, Lookback: "14d"}, []string{"platform", "country"}
	full.SetDefaults()
	for _, bc := range []struct {
		name string
		def  *experiment.Test
	}{{"plain", plain}, {"all_options", &full}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				d, err := load(ctx, conn, bc.def)
				if err != nil {
					b.Fatal(err)
				}
				if r := BuildReport(bc.def, d, time.Now()); r.Metrics[0].Variants[0].SampleSize != users/2 {
					b.Fatalf("revenue/a has %d users, want %d", r.Metrics[0].Variants[0].SampleSize, users/2)
				}
			}
		})
	}
}

// TestReportOptions builds the report from what ClickHouse returned for the
// fixture of TestLoadOptions and checks each new block against the pure
// functions of analysis/stats applied to the per-user data computed in Go.
func TestReportOptions(t *testing.T) {
	f := newOptionsFixture().insert(t)
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
