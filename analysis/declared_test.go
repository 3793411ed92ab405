package analysis

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/analysis/stats/statstest"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
	"github.com/abacus-ab/abacus/internal/registry"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

type declaredRef struct {
	ConfidenceLevel float64             `json:"confidence_level"`
	AssignedOnly    map[string][]string `json:"assigned_only"`
	Events          []struct {
		EventID   string             `json:"event_id"`
		UserID    string             `json:"user_id"`
		VariantID string             `json:"variant_id"`
		Metrics   map[string]float64 `json:"metrics"`
	} `json:"events"`
	Declared struct {
		Conversion struct {
			Variants map[string]struct {
				N         int64   `json:"n"`
				Successes int64   `json:"successes"`
				CILower   float64 `json:"ci_lower"`
				CIUpper   float64 `json:"ci_upper"`
			} `json:"variants"`
			Comparisons map[string]struct {
				Diff    float64 `json:"diff"`
				Z       float64 `json:"z"`
				PValue  float64 `json:"p_value"`
				CILower float64 `json:"ci_lower"`
				CIUpper float64 `json:"ci_upper"`
			} `json:"comparisons"`
		} `json:"conversion"`
		Revenue struct {
			Cap      float64 `json:"cap"`
			Variants map[string]struct {
				N      int64   `json:"n"`
				Mean   float64 `json:"mean"`
				StdDev float64 `json:"std_dev"`
			} `json:"variants"`
			Comparisons map[string]struct {
				Diff   float64 `json:"diff"`
				T      float64 `json:"t"`
				PValue float64 `json:"p_value"`
			} `json:"comparisons"`
		} `json:"revenue"`
	} `json:"expected_declared"`
}

// TestAnalyzeDeclaredMetrics stores the reference events and assignments in
// ClickHouse and checks the binary rule (assigned users without a result
// count as 0; the z-test) and winsorization (the cap from ClickHouse's
// quantileExact) against statsmodels and SciPy.
func TestAnalyzeDeclaredMetrics(t *testing.T) {
	var ref declaredRef
	readReference(t, &ref)
	conn, _ := chdbtest.Conn(t)
	bus := eventbustest.Connect(t, eventbustest.RunServer(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p95 := 95.0
	def := &experiment.Test{
		ID: "declared", Name: "declared", Type: experiment.TypeModel,
		Variants: []experiment.Variant{
			{ID: "control", TrafficPercentage: 40}, {ID: "b", TrafficPercentage: 40}, {ID: "c", TrafficPercentage: 20},
		},
		ControlVariantID: "control", PrimaryMetric: "conversion", ConfidenceLevel: ref.ConfidenceLevel,
		Metrics: []experiment.Metric{
			{Name: "conversion", Type: experiment.MetricBinary},
			{Name: "revenue", Role: experiment.RoleGuardrail, WinsorizePercentile: &p95},
		},
		Status: experiment.StatusRunning, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	def.SetDefaults()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	testsKV, _ := bus.KV(t.Context(), eventbus.BucketTests)
	reportsKV, _ := bus.KV(t.Context(), eventbus.BucketReports)
	store := registry.New(testsKV, log)
	if err := store.Create(t.Context(), def); err != nil {
		t.Fatal(err)
	}

	results, err := conn.PrepareBatch(t.Context(), "INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	assigned := map[string]string{}
	for i, ev := range ref.Events {
		assigned[ev.UserID] = ev.VariantID
		for m, v := range ev.Metrics {
			if err := results.Append(def.ID, ev.VariantID, ev.UserID, m, v, ev.EventID, time.Now(), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := results.Send(); err != nil {
		t.Fatal(err)
	}
	for v, users := range ref.AssignedOnly {
		for _, u := range users {
			assigned[u] = v
		}
	}
	as, err := conn.PrepareBatch(t.Context(), "INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq)")
	if err != nil {
		t.Fatal(err)
	}
	for u, v := range assigned {
		// Twice: a redelivered assignment must not count twice.
		for range 2 {
			if err := as.Append(def.ID, v, u, "a-"+u, time.Now(), uint64(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := as.Send(); err != nil {
		t.Fatal(err)
	}

	runner, err := NewRunner(Config{Interval: time.Hour}, conn, store, reportsKV, bus.NC, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep := analyzeReport(t, runner, def)
	if len(rep.Metrics) != 2 || rep.Metrics[0].Metric != "conversion" || rep.Metrics[0].Test != TestProportion {
		t.Fatalf("metrics = %+v, want conversion (binary) first", rep.Metrics)
	}
	conv, rev := rep.Metrics[0], rep.Metrics[1]
	for _, v := range conv.Variants {
		w := ref.Declared.Conversion.Variants[v.VariantID]
		if v.SampleSize != w.N || v.Conversions == nil || *v.Conversions != w.Successes {
			t.Errorf("conversion/%s = %d users %v conversions, want %d, %d", v.VariantID, v.SampleSize, deref64(v.Conversions), w.N, w.Successes)
		}
		if !statstest.ClosePtr(v.ConfidenceIntervalLower, w.CILower) || !statstest.ClosePtr(v.ConfidenceIntervalUpper, w.CIUpper) {
			t.Errorf("conversion/%s CI = (%v, %v), want (%v, %v) (statsmodels)", v.VariantID,
				deref(v.ConfidenceIntervalLower), deref(v.ConfidenceIntervalUpper), w.CILower, w.CIUpper)
		}
	}
	for _, c := range conv.Comparisons {
		w := ref.Declared.Conversion.Comparisons[c.VariantID]
		for _, f := range []struct {
			field string
			got   *float64
			want  float64
		}{
			{"absolute_difference", c.AbsoluteDifference, w.Diff}, {"z_statistic", c.ZStatistic, w.Z},
			{"p_value", c.PValue, w.PValue}, {"ci_lower", c.ConfidenceIntervalLower, w.CILower},
			{"ci_upper", c.ConfidenceIntervalUpper, w.CIUpper},
		} {
			if !statstest.ClosePtr(f.got, f.want) {
				t.Errorf("conversion/%s %s = %v, want %v (statsmodels)", c.VariantID, f.field, deref(f.got), f.want)
			}
		}
	}
	if !statstest.ClosePtr(rev.WinsorizeCap, ref.Declared.Revenue.Cap) {
		t.Errorf("revenue winsorize_cap = %v, want %v", deref(rev.WinsorizeCap), ref.Declared.Revenue.Cap)
	}
	for _, v := range rev.Variants {
		w := ref.Declared.Revenue.Variants[v.VariantID]
		if v.SampleSize != w.N || !statstest.ClosePtr(v.MeanValue, w.Mean) || !statstest.ClosePtr(v.StdDev, w.StdDev) {
			t.Errorf("revenue/%s = %d %v %v, want %d %v %v", v.VariantID, v.SampleSize, deref(v.MeanValue), deref(v.StdDev), w.N, w.Mean, w.StdDev)
		}
	}
	for _, c := range rev.Comparisons {
		w := ref.Declared.Revenue.Comparisons[c.VariantID]
		if !statstest.ClosePtr(c.AbsoluteDifference, w.Diff) || !statstest.ClosePtr(c.TStatistic, w.T) || !statstest.ClosePtr(c.PValue, w.PValue) {
			t.Errorf("revenue/%s diff %v t %v p %v, want %v %v %v (SciPy)", c.VariantID,
				deref(c.AbsoluteDifference), deref(c.TStatistic), deref(c.PValue), w.Diff, w.T, w.PValue)
		}
	}
	// b converts better at raw p = 0.030, but Holm's adjusted p = 2·0.030
	// = 0.061 is above 0.05: no winner, and the report says both.
	b := conv.Comparisons[0]
	if !b.Significant || b.SignificantAdjusted || !statstest.ClosePtr(b.PValueAdjusted, 2*ref.Declared.Conversion.Comparisons["b"].PValue) {
		t.Errorf("conversion/b significant %v, adjusted %v (p %v), want raw yes, adjusted no", b.Significant, b.SignificantAdjusted, deref(b.PValueAdjusted))
	}
	if rep.Verdict.WinnerVariantID != nil || rep.Verdict.Code != experiment.DecisionNotSignificant || rep.Decision != rep.Verdict.Code {
		t.Errorf("verdict = %+v, decision %q, want not_significant", rep.Verdict, rep.Decision)
	}
	if rep.Health.SRM == nil || rep.Health.SRM.Detected {
		t.Errorf("srm = %+v, want checked and not detected", rep.Health.SRM)
	}

	// A second run, then the history over NATS request-reply, as the API
	// asks for it. (Power plans are computed by the API: see api's
	// TestPower.)
	runner.now = func() time.Time { return time.Now().Add(time.Minute) }
	if _, err := runner.analyze(ctx, def, "test"); err != nil {
		t.Fatal(err)
	}
	defer startRunner(t, runner)()
	request := func(subject string, v any) *nats.Msg {
		t.Helper()
		body, _ := json.Marshal(v)
		reply, err := bus.NC.Request(subject, body, 10*time.Second)
		if err != nil {
			t.Fatalf("request on %s: %v", subject, err)
		}
		return reply
	}
	reply := request(eventv1.SubjectHistory, eventv1.HistoryRequest{TestID: def.ID, Metric: "revenue"})
	var h History
	if err := json.Unmarshal(reply.Data, &h); err != nil {
		t.Fatalf("history reply %q (%v): %v", reply.Data, reply.Header, err)
	}
	if len(h.Series) != 3 || h.Series[1].VariantID != "b" || len(h.Series[1].Points) != 2 {
		t.Fatalf("history = %+v, want 3 variants with 2 points each", h)
	}
	pt := h.Series[1].Points[1]
	if !pt.ComputedAt.After(h.Series[1].Points[0].ComputedAt) || !statstest.ClosePtr(pt.PValue, ref.Declared.Revenue.Comparisons["b"].PValue) ||
		pt.SampleSize != 320 || pt.RelativeCILower == nil || h.Series[0].Points[0].PValue != nil {
		t.Errorf("history points of b = %+v; control %+v", h.Series[1].Points, h.Series[0].Points)
	}
	reply = request(eventv1.SubjectHistory, eventv1.HistoryRequest{TestID: "nope"})
	if reply.Header.Get(eventv1.HeaderStatus) != "404" {
		t.Errorf("history of an unknown test: status %q, want 404", reply.Header.Get(eventv1.HeaderStatus))
	}
}

func deref64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
