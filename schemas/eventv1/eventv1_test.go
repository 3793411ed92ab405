package eventv1

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSamples decodes the canonical samples, validates them, and checks that
// encoding gives back the same JSON: the Go types and the samples agree.
func TestSamples(t *testing.T) {
	tests := []struct {
		file string
		v    interface{ Validate() error }
	}{
		{"testdata/assignment.json", &Assignment{}},
		{"testdata/result.json", &Result{}},
		{"testdata/assignment_attributes.json", &Assignment{}},
		{"testdata/result_covariates.json", &Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.v); err != nil {
				t.Fatalf("decoding %s: %v", tt.file, err)
			}
			if err := tt.v.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			enc, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			json.Unmarshal(raw, &want)
			json.Unmarshal(enc, &got)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("re-encoded %s differs (-want +got):\n%s", tt.file, d)
			}
		})
	}
}

func TestResultValidate(t *testing.T) {
	ok := func() Result {
		return Result{EventID: "e", TestID: "t", UserID: "u", VariantID: "v", Metrics: map[string]float64{"m": 1}, Timestamp: time.Unix(1, 0)}
	}
	tests := []struct {
		name    string
		mutate  func(*Result)
		wantErr string
	}{
		{"valid", func(*Result) {}, ""},
		{"no event id", func(r *Result) { r.EventID = "" }, "event_id"},
		{"no test id", func(r *Result) { r.TestID = "" }, "test_id"},
		{"no user", func(r *Result) { r.UserID = "" }, "user_id"},
		{"no variant", func(r *Result) { r.VariantID = "" }, "variant_id"},
		{"no metrics", func(r *Result) { r.Metrics = nil }, "metrics"},
		{"no timestamp", func(r *Result) { r.Timestamp = time.Time{} }, "timestamp"},
		{"long user", func(r *Result) { r.UserID = strings.Repeat("u", MaxIDBytes+1) }, "user_id"},
		{"covariate", func(r *Result) { r.Covariates = map[string]float64{"m": 0.5} }, ""},
		{"covariate of no metric", func(r *Result) { r.Covariates = map[string]float64{"x": 0.5} }, `covariate "x"`},
		{"infinite covariate", func(r *Result) { r.Covariates = map[string]float64{"m": math.Inf(1)} }, `covariate "m"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok()
			tt.mutate(&r)
			err := r.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}

func FuzzDecodeResult(f *testing.F) {
	raw, _ := os.ReadFile("testdata/result.json")
	f.Add(raw)
	f.Add([]byte(`{"metrics": {"m": 1e308}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Result
		if json.Unmarshal(data, &r) != nil || r.Validate() != nil {
			return
		}
		// A valid event survives a round trip unchanged.
		enc, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("encoding a valid result: %v", err)
		}
		var back Result
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("decoding re-encoded result: %v", err)
		}
		if back.Validate() != nil || !cmp.Equal(r, back) {
			t.Fatalf("round trip changed a valid result: %+v -> %+v", r, back)
		}
	})
}

func ExampleResult() {
	r := Result{
		EventID:   "evt-1",
		TestID:    "checkout",
		UserID:    "user-42",
		VariantID: "one_page",
		Metrics:   map[string]float64{"conversion": 1},
		Timestamp: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
	}
	b, _ := json.Marshal(r)
	os.Stdout.Write(b)
	// Output: {"event_id":"evt-1","test_id":"checkout","user_id":"user-42","variant_id":"one_page","metrics":{"conversion":1},"timestamp":"2026-11-26T00:00:00Z"}
}

func TestAssignmentValidateAttributes(t *testing.T) {
	many := map[string]string{}
	for i := range MaxAttributes + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name    string
		attrs   map[string]string
		wantErr string
	}{
		{"none", nil, ""},
		{"two", map[string]string{"platform": "ios", "country": "DE"}, ""},
		{"too many", many, "attributes"},
		{"empty value", map[string]string{"platform": ""}, "attribute platform"},
		{"long key", map[string]string{strings.Repeat("k", MaxAttributeKeyBytes+1): "v"}, "attribute key"},
		{"long value", map[string]string{"k": strings.Repeat("v", MaxAttributeValueBytes+1)}, "attribute k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Assignment{EventID: "e", TestID: "t", UserID: "u", VariantID: "v", Timestamp: time.Unix(1, 0), Attributes: tt.attrs}
			err := a.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}
