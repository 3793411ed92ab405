package analysis

import (
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

// beyondFixture is what TestLoadBeyond inserts, kept in Go so that the
// expected per-user data can be computed without ClickHouse.
type beyondFixture struct {
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

func newBeyondFixture() *beyondFixture {
	started := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	def := &experiment.Test{
		ID: "beyond", Name: "beyond", Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "revenue",
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
	f := &beyondFixture{def: def, variant: map[string]string{}, segment: map[string]string{}, prior: map[string][]float64{}}
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
func (f *beyondFixture) insert(t *testing.T) *beyondFixture {
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
func (f *beyondFixture) perUser() (values map[string]map[string][]float64, covs map[string]map[string][]float64) {
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
func (f *beyondFixture) expected() Data {
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

// TestLoadBeyond stores users, attributes, results with covariates and a
// pre-period in ClickHouse (some events and attributes twice, values
// outside the lookback window, an outdated attribute) and checks that the
// queries return the statistics computed in Go from the same rows.
func TestLoadBeyond(t *testing.T) {
	f := newBeyondFixture().insert(t)
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

// BenchmarkLoadBeyond measures load for a test of 100,000 users (300,000
// result events of 3 metrics, covariates on a third of them, attributes on
// every assignment) with every option of issue 5 (ratio metric, CUPED from
// covariates and from the lookback window, segments), against the same
// test without them.
func BenchmarkLoadBeyond(b *testing.B) {
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

// TestLoadSegmentsBinary checks the binary rule by segment: every assigned
// user counts (0 without a result), converted when any result is non-zero.
func TestLoadSegmentsBinary(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	ctx := t.Context()
	def := &experiment.Test{
		ID: "bin", Name: "bin", Type: experiment.TypeModel, ControlVariantID: "a", PrimaryMetric: "conv",
		Variants: []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		Metrics:  []experiment.Metric{{Name: "conv", Type: experiment.MetricBinary}},
		Segments: []string{"country"},
	}
	def.SetDefaults()
	as, err := conn.PrepareBatch(ctx, "INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := conn.PrepareBatch(ctx, "INSERT INTO assignment_attributes (test_id, variant_id, user_id, attribute_keys, attribute_values, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := conn.PrepareBatch(ctx, "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ country, variant string }
	want := map[key]stats.Proportion{}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	for u := range 600 {
		user, v := fmt.Sprintf("u%d", u), []string{"a", "b"}[u%2]
		country := []string{"DE", "FR", "US"}[rng.IntN(3)]
		if err := as.Append(def.ID, v, user, "a-"+user, now, uint64(0)); err != nil {
			t.Fatal(err)
		}
		if u%7 == 0 {
			country = SegmentNone
		} else if err := attrs.Append(def.ID, v, user, []string{"country"}, []string{country}, "a-"+user, now, uint64(0)); err != nil {
			t.Fatal(err)
		}
		converted := int64(0)
		for e := range rng.IntN(3) { // 0 to 2 results
			x := float64(rng.IntN(2))
			if x != 0 {
				converted = 1
			}
			if err := res.Append(def.ID, v, user, "conv", x, fmt.Sprintf("%s-%d", user, e), now, uint64(0)); err != nil {
				t.Fatal(err)
			}
		}
		p := want[key{country, v}]
		want[key{country, v}] = stats.Proportion{N: p.N + 1, Successes: p.Successes + converted}
	}
	for _, b := range []interface{ Send() error }{as, attrs, res} {
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := load(ctx, conn, def)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Segments["country"].Binary
	for k, w := range want {
		if g := got[k.country][k.variant]; g != w {
			t.Errorf("segment %s/%s = %+v, want %+v", k.country, k.variant, g, w)
		}
	}
	if len(got) != 4 {
		t.Errorf("country has %d segments, want DE, FR, US and (none)", len(got))
	}
	rep := BuildReport(def, d, time.Now())
	if len(rep.Segments) != 1 || len(rep.Segments[0].Segments) != 4 || rep.Segments[0].Segments[0].Variants[0].Conversions == nil {
		t.Errorf("report segments = %+v, want 4 binary segments", rep.Segments)
	}
}
