package stats

import (
	"errors"
	"math"
	"testing"
)

// Checks against testdata/gen_reference_tests.py (statsmodels and SciPy).

type check struct {
	field     string
	got, want float64
}

func checkAll(t *testing.T, worst *worstError, name string, cs []check) {
	t.Helper()
	for _, c := range cs {
		worst.observe(name+" "+c.field, c.got, c.want)
		if !matches(c.got, c.want) {
			t.Errorf("%s: %s = %v, want %v", name, c.field, c.got, c.want)
		}
	}
}

func TestTwoProportionZTestReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name               string
			Level              float64
			Control, Treatment struct{ N, Successes int64 }
			Diff, Z            float64
			StdErr             float64 `json:"std_err"`
			PValue             float64 `json:"p_value"`
			CILower            float64 `json:"ci_lower"`
			CIUpper            float64 `json:"ci_upper"`
			ZPooled            float64 `json:"z_pooled"`
			PValuePooled       float64 `json:"p_value_pooled"`
		}
	}
	readJSON(t, "proportions.json", &ref)
	var worst worstError
	for _, tc := range ref.Cases {
		c := Proportion(tc.Control)
		tr := Proportion(tc.Treatment)
		got, err := TwoProportionZTest(c, tr, tc.Level)
		if err != nil {
			t.Errorf("%s: TwoProportionZTest(%+v, %+v) error %v", tc.Name, c, tr, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{
			{"Diff", got.Diff, tc.Diff}, {"StdErr", got.StdErr, tc.StdErr}, {"Z", got.Z, tc.Z},
			{"PValue", got.PValue, tc.PValue}, {"CILower", got.CILower, tc.CILower}, {"CIUpper", got.CIUpper, tc.CIUpper},
			{"ZPooled", got.ZPooled, tc.ZPooled}, {"PValuePooled", got.PValuePooled, tc.PValuePooled},
		})
	}
	worst.log(t)
}

func TestTwoProportionZTestEdges(t *testing.T) {
	tests := []struct {
		name               string
		control, treatment Proportion
		wantIs             error
	}{
		{"both all zero", Proportion{N: 100}, Proportion{N: 80}, ErrZeroVariance},
		{"both all one", Proportion{N: 100, Successes: 100}, Proportion{N: 3, Successes: 3}, ErrZeroVariance},
		{"control all zero, treatment all one", Proportion{N: 10}, Proportion{N: 10, Successes: 10}, ErrZeroVariance},
		{"empty control", Proportion{}, Proportion{N: 10, Successes: 3}, ErrInsufficientData},
		{"successes above n", Proportion{N: 3, Successes: 4}, Proportion{N: 10, Successes: 3}, nil},
	}
	for _, tt := range tests {
		got, err := TwoProportionZTest(tt.control, tt.treatment, 0.95)
		if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
			t.Errorf("%s: TwoProportionZTest() = %+v, %v, want error %v", tt.name, got, err, tt.wantIs)
		}
	}
}

func TestFiellerReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name                 string
			MC, VC, MT, VT, Crit float64
			Lower, Upper         float64
		}
	}
	readJSON(t, "fieller.json", &ref)
	var worst worstError
	for _, tc := range ref.Cases {
		got := Fieller(tc.MC, tc.VC, tc.MT, tc.VT, tc.Crit)
		if !got.Bounded {
			t.Errorf("%s: Fieller() unbounded, want (%v, %v)", tc.Name, tc.Lower, tc.Upper)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{{"Lower", got.Lower, tc.Lower}, {"Upper", got.Upper, tc.Upper}})
	}
	worst.log(t)
	if got := Fieller(0, 1, 1, 1, 1.96); got.Bounded {
		t.Errorf("Fieller with control mean 0 = %+v, want unbounded", got)
	}
	if got := Fieller(0.1, 0.01, 0.2, 0.01, 1.96); got.Bounded { // g = 1.96²·0.01/0.01 > 1
		t.Errorf("Fieller with g > 1 = %+v, want unbounded", got)
	}
}

// TestFiellerAgreesWithWelch checks on a grid that the relative interval
// excludes 0 exactly when the Welch interval of the difference does.
func TestFiellerAgreesWithWelch(t *testing.T) {
	for _, mt := range []float64{9.5, 9.9, 9.95, 10, 10.05, 10.1, 10.2, 10.5, 11} {
		c := Sample{N: 400, Mean: 10, Variance: 4}
		tr := Sample{N: 380, Mean: mt, Variance: 5}
		w, err := WelchTTest(c, tr, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		ri := Fieller(c.Mean, c.Variance/400, tr.Mean, tr.Variance/380, w.Critical)
		abs := w.CILower > 0 || w.CIUpper < 0
		rel := ri.Lower > 0 || ri.Upper < 0
		if abs != rel || abs != (w.PValue < 0.05) {
			t.Errorf("mean %v: absolute CI (%v, %v) p %v, relative CI (%v, %v): disagree", mt, w.CILower, w.CIUpper, w.PValue, ri.Lower, ri.Upper)
		}
	}
}

func TestAdjustPValuesReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name              string
			P, Holm           []float64
			BenjaminiHochberg []float64 `json:"benjamini_hochberg"`
		}
	}
	readJSON(t, "adjust.json", &ref)
	var worst worstError
	for _, tc := range ref.Cases {
		for _, m := range []struct {
			method string
			want   []float64
		}{{CorrectionHolm, tc.Holm}, {CorrectionBenjaminiHochberg, tc.BenjaminiHochberg}} {
			got, err := AdjustPValues(tc.P, m.method)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				worst.observe(tc.Name+" "+m.method, got[i], m.want[i])
				if !matches(got[i], m.want[i]) {
					t.Errorf("AdjustPValues(%v, %s)[%d] = %v, want %v", tc.P, m.method, i, got[i], m.want[i])
				}
			}
		}
	}
	worst.log(t)
	got, err := AdjustPValues([]float64{0.01, math.NaN(), 0.02}, CorrectionHolm)
	if err != nil || got[0] != 0.02 || !math.IsNaN(got[1]) || got[2] != 0.02 {
		t.Errorf("AdjustPValues with a NaN = %v, %v, want [0.02 NaN 0.02]", got, err)
	}
	if _, err := AdjustPValues([]float64{0.1}, "bonferroni"); err == nil {
		t.Error("AdjustPValues with an unknown method: want an error")
	}
}

func TestChiSquareGOFReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name      string
			Observed  []int64
			Weights   []float64
			ChiSquare float64 `json:"chi_square"`
			PValue    float64 `json:"p_value"`
			Expected  []float64
		}
	}
	readJSON(t, "srm.json", &ref)
	var worst worstError
	for _, tc := range ref.Cases {
		got, err := ChiSquareGOF(tc.Observed, tc.Weights)
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		cs := []check{{"ChiSquare", got.ChiSquare, tc.ChiSquare}, {"PValue", got.PValue, tc.PValue}}
		for i := range tc.Expected {
			cs = append(cs, check{"Expected", got.Expected[i], tc.Expected[i]})
		}
		checkAll(t, &worst, tc.Name, cs)
	}
	worst.log(t)
	if _, err := ChiSquareGOF([]int64{0, 0}, []float64{50, 50}); !errors.Is(err, ErrInsufficientData) {
		t.Errorf("ChiSquareGOF without users: error %v, want ErrInsufficientData", err)
	}
}

func TestPowerReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name                                string
			Binary                              bool
			Baseline, Ratio, Alpha, Delta, N, K float64
			StdDev                              float64 `json:"std_dev"`
			TargetPower                         float64 `json:"target_power"`
			Power                               float64
			SampleSize                          float64 `json:"sample_size"`
			MDE                                 float64
		}
	}
	readJSON(t, "power.json", &ref)
	var worst worstError
	for _, tc := range ref.Cases {
		if tc.K != 0 {
			got := CurrentMDE(1, tc.Alpha, tc.TargetPower)
			checkAll(t, &worst, tc.Name, []check{{"k", got, tc.K}})
			continue
		}
		p := PowerSpec{Binary: tc.Binary, Baseline: tc.Baseline, StdDev: tc.StdDev, Ratio: tc.Ratio, Alpha: tc.Alpha}
		pw, err1 := p.Power(tc.Delta, tc.N)
		n, err2 := p.SampleSize(tc.Delta, tc.TargetPower)
		mde, err3 := p.MDE(tc.N, tc.TargetPower)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
			continue
		}
		checkAll(t, &worst, tc.Name, []check{{"Power", pw, tc.Power}, {"SampleSize", n, tc.SampleSize}, {"MDE", mde, tc.MDE}})
	}
	worst.log(t)
}

// FuzzAdjustPValues checks the invariants of both corrections: an adjusted
// p-value is in [raw, 1], and adjusted values keep the order of the raw ones.
func FuzzAdjustPValues(f *testing.F) {
	f.Add(0.01, 0.04, 0.03, 0.5)
	f.Add(0.0, 1.0, 0.5, 0.5)
	f.Fuzz(func(t *testing.T, a, b, c, d float64) {
		ps := []float64{a, b, c, d}
		for _, p := range ps {
			if !(p >= 0 && p <= 1) {
				return
			}
		}
		for _, m := range []string{CorrectionHolm, CorrectionBenjaminiHochberg} {
			adj, err := AdjustPValues(ps, m)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ps {
				if !(adj[i] >= ps[i] && adj[i] <= 1) {
					t.Errorf("%s(%v)[%d] = %v, want in [%v, 1]", m, ps, i, adj[i], ps[i])
				}
				for j := range ps {
					if ps[i] < ps[j] && adj[i] > adj[j] {
						t.Errorf("%s(%v) = %v: order of %d and %d reversed", m, ps, adj, i, j)
					}
				}
			}
		}
	})
}
