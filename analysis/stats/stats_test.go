package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/abacus-ab/abacus/analysis/stats/statstest"
)

// matches is statstest.Close: the reference values in testdata/ (regenerate
// them with testdata/gen_reference.py) agree to statstest.RelTol.
func matches(got, want float64) bool { return statstest.Close(got, want) }

// sampleOf returns the Sample of xs, one value per user (the moments of
// statstest, the tests' oracle).
func sampleOf(xs []float64) Sample {
	n, mean, variance := statstest.Moments(xs)
	return Sample{N: n, Mean: mean, Variance: variance}
}

// worstError tracks the largest relative error seen against a reference
// file, for the test log.
type worstError struct {
	rel   float64
	where string
}

func (w *worstError) observe(where string, got, want float64) {
	var rel float64
	switch {
	case got == want:
	case want == 0:
		rel = math.Abs(got)
	default:
		rel = math.Abs(got-want) / math.Abs(want)
	}
	if rel > w.rel || math.IsNaN(rel) {
		w.rel, w.where = rel, where
	}
}

func (w *worstError) log(t *testing.T) {
	t.Helper()
	t.Logf("max relative error vs SciPy: %.3g (%s)", w.rel, w.where)
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
}

type jsonSample struct {
	N        int64   `json:"n"`
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
}

func (s jsonSample) sample() Sample { return Sample(s) }

type welchCase struct {
	Name            string     `json:"name"`
	Source          string     `json:"source"` // "from_stats" or "raw"
	Level           float64    `json:"level"`
	Control         jsonSample `json:"control"`
	Treatment       jsonSample `json:"treatment"`
	ControlValues   []float64  `json:"control_values"`
	TreatmentValues []float64  `json:"treatment_values"`
	Diff            float64    `json:"diff"`
	StdErr          float64    `json:"std_err"`
	T               float64    `json:"t"`
	DoF             float64    `json:"dof"`
	PValue          float64    `json:"p_value"`
	CILower         float64    `json:"ci_lower"`
	CIUpper         float64    `json:"ci_upper"`
}

func TestWelchTTestReference(t *testing.T) {
	var ref struct {
		Cases []welchCase `json:"cases"`
	}
	readJSON(t, "welch.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("welch.json has no cases")
	}
	var worst worstError
	for _, tc := range ref.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			control, treatment := tc.Control.sample(), tc.Treatment.sample()
			if tc.Source == "raw" {
				// The per-user values go through statstest.Moments; NumPy's
				// mean and var(ddof=1) of the same values are the reference.
				control = checkMoments(t, tc.ControlValues, control, &worst)
				treatment = checkMoments(t, tc.TreatmentValues, treatment, &worst)
			}
			got, err := WelchTTest(control, treatment, tc.Level)
			if err != nil {
				t.Fatalf("WelchTTest(%+v, %+v, %v) error = %v, want nil", control, treatment, tc.Level, err)
			}
			for _, f := range []struct {
				field     string
				got, want float64
			}{
				{"Diff", got.Diff, tc.Diff},
				{"StdErr", got.StdErr, tc.StdErr},
				{"T", got.T, tc.T},
				{"DoF", got.DoF, tc.DoF},
				{"PValue", got.PValue, tc.PValue},
				{"CILower", got.CILower, tc.CILower},
				{"CIUpper", got.CIUpper, tc.CIUpper},
			} {
				worst.observe(tc.Name+" "+f.field, f.got, f.want)
				if !matches(f.got, f.want) {
					t.Errorf("WelchTTest(%+v, %+v, %v).%s = %v, want %v", control, treatment, tc.Level, f.field, f.got, f.want)
				}
			}
		})
	}
	worst.log(t)
}

// checkMoments compares statstest.Moments(xs) with NumPy's statistics of xs
// and returns the computed Sample.
func checkMoments(t *testing.T, xs []float64, want Sample, worst *worstError) Sample {
	t.Helper()
	got := sampleOf(xs)
	worst.observe(fmt.Sprintf("Moments(n=%d).Mean", len(xs)), got.Mean, want.Mean)
	worst.observe(fmt.Sprintf("Moments(n=%d).Variance", len(xs)), got.Variance, want.Variance)
	if got.N != want.N || !matches(got.Mean, want.Mean) || !matches(got.Variance, want.Variance) {
		t.Errorf("Moments(%d values) = %+v, want %+v", len(xs), got, want)
	}
	return got
}

func TestMeanIntervalReference(t *testing.T) {
	var ref struct {
		Cases []struct {
			Name   string     `json:"name"`
			Level  float64    `json:"level"`
			Sample jsonSample `json:"sample"`
			Lower  float64    `json:"lower"`
			Upper  float64    `json:"upper"`
		} `json:"cases"`
	}
	readJSON(t, "mean_interval.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("mean_interval.json has no cases")
	}
	var worst worstError
	for _, tc := range ref.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			s := tc.Sample.sample()
			lo, hi, err := MeanInterval(s, tc.Level)
			worst.observe(tc.Name+" lower", lo, tc.Lower)
			worst.observe(tc.Name+" upper", hi, tc.Upper)
			if err != nil || !matches(lo, tc.Lower) || !matches(hi, tc.Upper) {
				t.Errorf("MeanInterval(%+v, %v) = (%v, %v, %v), want (%v, %v, nil)", s, tc.Level, lo, hi, err, tc.Lower, tc.Upper)
			}
		})
	}
	worst.log(t)
}

// TestWelchTTestSTATSExample pins the continuous example of STATS.md at the
// precision it is quoted there.
func TestWelchTTestSTATSExample(t *testing.T) {
	control := Sample{N: 500, Mean: 10, Variance: 3 * 3}
	treatment := Sample{N: 520, Mean: 10.6, Variance: 3.2 * 3.2}
	got, err := WelchTTest(control, treatment, 0.95)
	if err != nil {
		t.Fatalf("WelchTTest(%+v, %+v, 0.95) error = %v", control, treatment, err)
	}
	want := Welch{Diff: 0.6, DoF: 1017.4, PValue: 0.00205, CILower: 0.219, CIUpper: 0.981}
	if math.Abs(got.Diff-want.Diff) > 1e-12 || math.Abs(got.DoF-want.DoF) > 0.05 ||
		math.Abs(got.PValue-want.PValue) > 5e-6 || math.Abs(got.CILower-want.CILower) > 5e-4 ||
		math.Abs(got.CIUpper-want.CIUpper) > 5e-4 {
		t.Errorf("WelchTTest(%+v, %+v, 0.95) = %+v, want about %+v", control, treatment, got, want)
	}
}

func TestWelchTTestErrors(t *testing.T) {
	ok := Sample{N: 10, Mean: 1, Variance: 1}
	tests := []struct {
		name               string
		control, treatment Sample
		level              float64
		wantIs             error // checked with errors.Is when non-nil
	}{
		{name: "control N=1", control: Sample{N: 1, Mean: 1}, treatment: ok, level: 0.95, wantIs: ErrInsufficientData},
		{name: "treatment N=0", control: ok, treatment: Sample{N: 0, Mean: math.NaN(), Variance: math.NaN()}, level: 0.95, wantIs: ErrInsufficientData},
		{name: "both zero variance", control: Sample{N: 5, Mean: 1}, treatment: Sample{N: 7, Mean: 2}, level: 0.95, wantIs: ErrZeroVariance},
		{name: "level 0", control: ok, treatment: ok, level: 0},
		{name: "level 1", control: ok, treatment: ok, level: 1},
		{name: "level negative", control: ok, treatment: ok, level: -0.95},
		{name: "level percent", control: ok, treatment: ok, level: 95},
		{name: "level NaN", control: ok, treatment: ok, level: math.NaN()},
		{name: "negative N", control: Sample{N: -3, Mean: 1, Variance: 1}, treatment: ok, level: 0.95},
		{name: "negative variance", control: ok, treatment: Sample{N: 10, Mean: 1, Variance: -1e-18}, level: 0.95},
		{name: "NaN variance", control: Sample{N: 10, Mean: 1, Variance: math.NaN()}, treatment: ok, level: 0.95},
		{name: "infinite variance", control: ok, treatment: Sample{N: 10, Mean: 1, Variance: math.Inf(1)}, level: 0.95},
		{name: "NaN mean", control: Sample{N: 10, Mean: math.NaN(), Variance: 1}, treatment: ok, level: 0.95},
		{name: "infinite mean", control: ok, treatment: Sample{N: 10, Mean: math.Inf(-1), Variance: 1}, level: 0.95},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WelchTTest(tt.control, tt.treatment, tt.level)
			if err == nil {
				t.Fatalf("WelchTTest(%+v, %+v, %v) = %+v, nil, want an error", tt.control, tt.treatment, tt.level, got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("WelchTTest(%+v, %+v, %v) error = %v, want %v", tt.control, tt.treatment, tt.level, err, tt.wantIs)
			}
			if tt.wantIs == nil && (errors.Is(err, ErrInsufficientData) || errors.Is(err, ErrZeroVariance)) {
				t.Errorf("WelchTTest(%+v, %+v, %v) error = %v, want a validation error", tt.control, tt.treatment, tt.level, err)
			}
			if got != (Welch{}) {
				t.Errorf("WelchTTest(%+v, %+v, %v) = %+v, want the zero Welch with an error", tt.control, tt.treatment, tt.level, got)
			}
		})
	}
}

// TestWelchTTestOneZeroVariance checks that one constant arm is fine: the
// degrees of freedom are then those of the other arm.
func TestWelchTTestOneZeroVariance(t *testing.T) {
	control := Sample{N: 20, Mean: 1}
	treatment := Sample{N: 30, Mean: 2, Variance: 4}
	got, err := WelchTTest(control, treatment, 0.9)
	if err != nil || got.DoF != 29 {
		t.Errorf("WelchTTest(%+v, %+v, 0.9) = %+v, %v, want DoF 29, nil", control, treatment, got, err)
	}
}

func TestMeanIntervalErrors(t *testing.T) {
	tests := []struct {
		name   string
		s      Sample
		level  float64
		wantIs error
	}{
		{name: "N=1", s: Sample{N: 1, Mean: 3}, level: 0.95, wantIs: ErrInsufficientData},
		{name: "N=0", s: Sample{}, level: 0.95, wantIs: ErrInsufficientData},
		{name: "negative N", s: Sample{N: -1}, level: 0.95},
		{name: "negative variance", s: Sample{N: 4, Mean: 1, Variance: -2}, level: 0.95},
		{name: "level 0", s: Sample{N: 4, Mean: 1, Variance: 2}, level: 0},
		{name: "level 1", s: Sample{N: 4, Mean: 1, Variance: 2}, level: 1},
		{name: "level NaN", s: Sample{N: 4, Mean: 1, Variance: 2}, level: math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, err := MeanInterval(tt.s, tt.level)
			if err == nil {
				t.Fatalf("MeanInterval(%+v, %v) = (%v, %v, nil), want an error", tt.s, tt.level, lo, hi)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("MeanInterval(%+v, %v) error = %v, want %v", tt.s, tt.level, err, tt.wantIs)
			}
		})
	}
}

func TestMeanIntervalZeroVariance(t *testing.T) {
	s := Sample{N: 3, Mean: 0.25}
	lo, hi, err := MeanInterval(s, 0.95)
	if err != nil || lo != s.Mean || hi != s.Mean {
		t.Errorf("MeanInterval(%+v, 0.95) = (%v, %v, %v), want (%v, %v, nil)", s, lo, hi, err, s.Mean, s.Mean)
	}
}

// TestCombine checks that combining the Samples of two groups gives the
// Sample of all their values, for every split point of a list.
func TestCombine(t *testing.T) {
	xs := []float64{1e6 + 3, 1e6 - 2, 1e6 + 7.5, 1e6, 1e6 + 1, 1e6 - 4, 1e6 + 2}
	want := sampleOf(xs)
	for k := 0; k <= len(xs); k++ {
		got := Combine(sampleOf(xs[:k]), sampleOf(xs[k:]))
		if got.N != want.N || !matches(got.Mean, want.Mean) || !matches(got.Variance, want.Variance) {
			t.Errorf("split at %d: Combine = %+v, want %+v", k, got, want)
		}
	}
}

// TestWelchTTestSymmetry checks that swapping the arms negates the
// difference, the t statistic and the interval, and keeps the rest.
func TestWelchTTestSymmetry(t *testing.T) {
	a := Sample{N: 37, Mean: 3.5, Variance: 2.25}
	b := Sample{N: 1200, Mean: 3.9, Variance: 6.5}
	ab, err := WelchTTest(a, b, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := WelchTTest(b, a, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	want := Welch{
		Diff: -ab.Diff, StdErr: ab.StdErr, T: -ab.T, DoF: ab.DoF, PValue: ab.PValue,
		CILower: -ab.CIUpper, CIUpper: -ab.CILower, Critical: ab.Critical,
	}
	// Symmetric, as cmp requires of a Comparer.
	near := cmp.Comparer(func(x, y float64) bool { return matches(x, y) && matches(y, x) })
	if diff := cmp.Diff(want, ba, near); diff != "" {
		t.Errorf("WelchTTest(b, a, 0.9) mismatch with swapped WelchTTest(a, b, 0.9) (-want +got):\n%s", diff)
	}
}

func BenchmarkWelchTTest(b *testing.B) {
	for _, bc := range []struct {
		name               string
		control, treatment Sample
	}{
		{"dof=1017", Sample{N: 500, Mean: 10, Variance: 9}, Sample{N: 520, Mean: 10.6, Variance: 10.24}},
		{"dof=2e8", Sample{N: 1e8, Mean: 0.1, Variance: 0.09}, Sample{N: 1e8, Mean: 0.10006, Variance: 0.09}},
		{"dof=8", Sample{N: 5, Mean: 0, Variance: 1}, Sample{N: 5, Mean: 1.3, Variance: 1.2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := WelchTTest(bc.control, bc.treatment, 0.95); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
