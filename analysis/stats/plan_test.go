package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/abacus-ab/abacus/analysis/stats/statstest"
)

// planJSON decodes body as the API does (unknown fields rejected) and plans
// it.
func planJSON(t *testing.T, body string) (*PowerResponse, error) {
	t.Helper()
	var req PowerRequest
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return Plan(req, 100) // experiment.MaxVariants, which stats does not import
}

// TestPlanMatchesStatsmodels drives Plan with cases of testdata/power.json
// (statsmodels NormalIndPower / normal_power_het).
func TestPlanMatchesStatsmodels(t *testing.T) {
	raw, err := os.ReadFile("testdata/power.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Name       string  `json:"name"`
			SampleSize float64 `json:"sample_size"`
			MDE        float64 `json:"mde"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{}
	for _, c := range ref.Cases {
		want[c.Name] = [2]float64{c.SampleSize, c.MDE}
	}
	tests := []struct {
		name, body string
		ref        string
		inverse    bool
	}{
		{name: "continuous, 2 variants", ref: "continuous_equal_split",
			body: `{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.3, "mde_type": "absolute"}`},
		{name: "continuous, relative mde", ref: "continuous_equal_split",
			body: `{"metric_type": "continuous", "baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.03}`},
		{name: "continuous, 4 variants: alpha / 3", ref: "continuous_bonferroni_3",
			body: `{"baseline_mean": 100, "baseline_std_dev": 40, "mde": 2, "mde_type": "absolute", "variants": 4}`},
		{name: "binary, unequal split", ref: "binary_unequal_split",
			body: `{"metric_type": "binary", "baseline_rate": 0.3, "mde": 0.05, "mde_type": "absolute", "alpha": 0.1, "power": 0.9,
			"traffic_percentages": [33.333333333333336, 66.66666666666667]}`},
		{name: "inverse: continuous", ref: "continuous_equal_split", inverse: true,
			body: `{"baseline_mean": 10, "baseline_std_dev": 3, "total_users": 2000}`},
		{name: "inverse: binary", ref: "binary_10pct_plus_2pts", inverse: true,
			body: `{"metric_type": "binary", "baseline_rate": 0.1, "total_users": 6000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planJSON(t, tt.body)
			if err != nil {
				t.Fatalf("Plan(%s) error %v", tt.body, err)
			}
			c := got.Comparisons[0]
			w := want[tt.ref]
			g, wv := c.TreatmentUsers, w[0]
			if tt.inverse {
				g, wv = c.MDEAbsolute, w[1]
			}
			if !statstest.Close(g, wv) {
				t.Errorf("Plan(%s) = %v, want %v (statsmodels)", tt.body, g, wv)
			}
			if !tt.inverse {
				var sum int64
				for _, n := range got.UsersPerVariant {
					sum += n
				}
				if sum != got.TotalUsers || float64(got.UsersPerVariant[1]) < c.TreatmentUsers || float64(got.UsersPerVariant[0]) < c.ControlUsers {
					t.Errorf("plan %+v does not cover the comparison %+v", got, c)
				}
			}
		})
	}
}

func TestPlanRejects(t *testing.T) {
	for _, body := range []string{
		`{}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "total_users": 100}`,
		`{"baseline_mean": 10, "baseline_std_dev": 0, "mde": 0.1}`,
		`{"metric_type": "binary", "baseline_rate": 1.2, "mde": 0.1}`,
		`{"metric_type": "binary", "baseline_rate": 0.9, "mde": 0.2}`,
		`{"metric_type": "binary", "baseline_mean": 0.5, "mde": 0.2}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "alpha": 0.7}`,
		`{"baseline_mean": 10, "baseline_std_dev": 3, "mde": 0.1, "traffic_percentages": [50, 40]}`,
		`{"baseline_mean": 0, "baseline_std_dev": 3, "mde": 0.1}`,
	} {
		// The unknown field and the malformed body that were here are
		// decoding errors: api's TestPower checks them.
		var pe *PlanError
		if _, err := planJSON(t, body); !errors.As(err, &pe) {
			t.Errorf("Plan(%s) error %v, want a *PlanError", body, err)
		}
	}
}
