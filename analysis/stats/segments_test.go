package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestScanSegmentsReference(t *testing.T) {
	var ref struct {
		Segments []struct {
			Name         string
			Effects      []float64
			StdErrs      []float64 `json:"std_errs"`
			Alpha        float64
			Correction   string
			Pooled       float64
			PooledStdErr float64 `json:"pooled_std_err"`
			Q, DoF       float64
			QPValue      float64 `json:"q_p_value"`
			I2           float64
			Segments     []struct {
				Rest           float64
				RestStdErr     float64 `json:"rest_std_err"`
				Diff           float64
				DiffStdErr     float64 `json:"diff_std_err"`
				Z              float64
				PValue         float64 `json:"p_value"`
				AdjustedPValue float64 `json:"adjusted_p_value"`
				Flagged        bool
			}
		}
	}
	readJSON(t, "options.json", &ref)
	if len(ref.Segments) == 0 {
		t.Fatal("options.json has no segments cases")
	}
	var worst worstError
	for _, tc := range ref.Segments {
		in := make([]SegmentEffect, len(tc.Effects))
		for i := range in {
			in[i] = SegmentEffect{Name: string(rune('a' + i)), Effect: tc.Effects[i], StdErr: tc.StdErrs[i]}
		}
		got, err := ScanSegments(in, tc.Alpha, tc.Correction)
		if err != nil {
			t.Errorf("%s: ScanSegments() error %v", tc.Name, err)
			continue
		}
		cs := []check{
			{"Pooled", got.Pooled, tc.Pooled}, {"PooledStdErr", got.PooledStdErr, tc.PooledStdErr},
			{"Q", got.Q, tc.Q}, {"DoF", got.DoF, tc.DoF}, {"QPValue", got.QPValue, tc.QPValue}, {"I2", got.I2, tc.I2},
		}
		for i, w := range tc.Segments {
			g := got.Segments[i]
			if g.Name != in[i].Name || g.Flagged != w.Flagged {
				t.Errorf("%s: segment %d = %+v, want name %q, flagged %v", tc.Name, i, g, in[i].Name, w.Flagged)
			}
			cs = append(cs, check{"Rest", g.Rest, w.Rest}, check{"RestStdErr", g.RestStdErr, w.RestStdErr},
				check{"Diff", g.Diff, w.Diff}, check{"DiffStdErr", g.DiffStdErr, w.DiffStdErr}, check{"Z", g.Z, w.Z},
				check{"PValue", g.PValue, w.PValue}, check{"AdjustedPValue", g.AdjustedPValue, w.AdjustedPValue})
		}
		checkAll(t, &worst, tc.Name, cs)
	}
	worst.log(t)
}

func TestScanSegmentsEdges(t *testing.T) {
	ok := SegmentEffect{Name: "ok", Effect: 0.1, StdErr: 0.05}
	tests := []struct {
		name       string
		segs       []SegmentEffect
		alpha      float64
		correction string
		wantIs     error
	}{
		{"no segments", nil, 0.05, "", ErrInsufficientData},
		{"one segment", []SegmentEffect{ok}, 0.05, "", ErrInsufficientData},
		{"zero standard error", []SegmentEffect{ok, {Name: "z", Effect: 1}}, 0.05, "", nil},
		{"NaN effect", []SegmentEffect{ok, {Name: "n", Effect: math.NaN(), StdErr: 1}}, 0.05, "", nil},
		{"infinite standard error", []SegmentEffect{ok, {Name: "i", StdErr: math.Inf(1)}}, 0.05, "", nil},
		{"bad alpha", []SegmentEffect{ok, ok}, 0, "", nil},
		{"bad correction", []SegmentEffect{ok, ok}, 0.05, "bonferroni", nil},
	}
	for _, tt := range tests {
		got, err := ScanSegments(tt.segs, tt.alpha, tt.correction)
		if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: ScanSegments() = %+v, %v, want error %v", tt.name, got, err, tt.wantIs)
		}
	}
	// Identical segments: Q = 0, I² = 0, nothing flagged, no NaN (up to
	// rounding of the pooled mean).
	got, err := ScanSegments([]SegmentEffect{ok, ok, ok}, 0.05, "")
	if err != nil || got.Q > 1e-20 || got.I2 != 0 || got.QPValue < 1-1e-12 {
		t.Errorf("ScanSegments(identical) = %+v, %v, want Q 0, I2 0, p 1", got, err)
	}
	for _, s := range got.Segments {
		if s.Flagged || s.PValue < 1-1e-12 {
			t.Errorf("ScanSegments(identical) segment %+v, want p 1, not flagged", s)
		}
	}
}

// TestScanSegmentsFamilywise checks that with one common effect across ten
// segments, the share of scans flagging any segment stays at most alpha
// (Holm controls the family-wise error), while a segment with a clearly
// different effect is found.
func TestScanSegmentsFamilywise(t *testing.T) {
	const (
		sims  = 2000
		k     = 10
		alpha = 0.05
	)
	rng := rand.New(rand.NewPCG(8, 9))
	var anyNull, qNull, found int
	segs := make([]SegmentEffect, k)
	for range sims {
		for i := range segs {
			se := 0.02 + 0.01*float64(i) // unequal segment sizes
			segs[i] = SegmentEffect{Effect: 0.1 + se*rng.NormFloat64(), StdErr: se}
		}
		r, err := ScanSegments(segs, alpha, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.QPValue <= alpha {
			qNull++
		}
		for _, s := range r.Segments {
			if s.Flagged {
				anyNull++
				break
			}
		}
		segs[3].Effect += 0.2 // 0.2 against a standard error of 0.05
		if r, err = ScanSegments(segs, alpha, ""); err != nil {
			t.Fatal(err)
		}
		if r.Segments[3].Flagged {
			found++
		}
	}
	fw, q, pw := float64(anyNull)/sims, float64(qNull)/sims, float64(found)/sims
	sd := math.Sqrt(alpha * (1 - alpha) / sims)
	t.Logf("%d segments, common effect, %d scans: any segment flagged %.4f, Cochran's Q significant %.4f (alpha %.2f); shifted segment found %.4f",
		k, sims, fw, q, alpha, pw)
	if fw > alpha+3*sd || q > alpha+3*sd {
		t.Errorf("family-wise error %.4f, Q rejection %.4f, want <= %.4f", fw, q, alpha+3*sd)
	}
	if pw < 0.8 {
		t.Errorf("shifted segment flagged in %.4f of scans, want >= 0.8", pw)
	}
}
