package analysis

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/analysis/stats"
	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

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
