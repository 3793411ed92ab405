package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// optionsCreate is validCreate with every analysis option (issue 5).
const optionsCreate = `{
  "test_name": "Checkout flow",
  "test_type": "workflow",
  "variants": [
    {"variant_id": "control", "variant_name": "Control", "traffic_percentage": 50},
    {"variant_id": "one_page", "variant_name": "One page", "traffic_percentage": 50}
  ],
  "control_variant_id": "control",
  "primary_metric": "revenue_per_session",
  "metrics": [
    {"name": "revenue_per_session", "type": "ratio", "numerator": "revenue", "denominator": "sessions"},
    {"name": "latency_ms", "direction": "decrease", "role": "guardrail", "non_inferiority_margin": 0.02}
  ],
  "analysis_method": "sequential",
  "sequential_tuning_n": 20000,
  "bayesian": {"enabled": true, "prior": {"mean": 0, "sd": 0.3}},
  "cuped": {"enabled": true, "lookback": "28d"},
  "segments": ["platform", "country"]
}`

// TestCreateAnalysisOptions checks that every new definition field is
// validated with a 400 naming the field, and that a valid definition is
// stored with its defaults and comes back unchanged from GET.
func TestCreateAnalysisOptions(t *testing.T) {
	h := newHarness(t, Config{MaxBodyBytes: 8192})
	mutate := func(from, to string) string {
		if !strings.Contains(optionsCreate, from) {
			t.Fatalf("test bug: %q not in the body", from)
		}
		return strings.Replace(optionsCreate, from, to, 1)
	}
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantField string
	}{
		{name: "valid", body: optionsCreate, wantCode: 201},
		{name: "flat prior", body: mutate(`{"mean": 0, "sd": 0.3}`, `"flat"`), wantCode: 201},
		{name: "absolute margin", body: mutate(`"non_inferiority_margin": 0.02`, `"non_inferiority_margin": 5, "non_inferiority_margin_type": "absolute"`), wantCode: 201},
		{name: "unknown method", body: mutate(`"sequential",`, `"bandit",`), wantCode: 400, wantField: "analysis_method"},
		{name: "tuning too small", body: mutate(`20000`, `10`), wantCode: 400, wantField: "sequential_tuning_n"},
		{name: "tuning without sequential", body: mutate(`"analysis_method": "sequential"`, `"analysis_method": "fixed_horizon"`), wantCode: 400, wantField: "sequential_tuning_n"},
		{name: "bad prior", body: mutate(`{"mean": 0, "sd": 0.3}`, `"informative"`), wantCode: 400, wantField: "bayesian.prior"},
		{name: "prior without sd", body: mutate(`{"mean": 0, "sd": 0.3}`, `{"mean": 0}`), wantCode: 400, wantField: "bayesian.prior"},
		{name: "prior sd 0", body: mutate(`"sd": 0.3`, `"sd": 0`), wantCode: 400, wantField: "bayesian.prior.sd"},
		{name: "risk threshold", body: mutate(`"enabled": true, "prior"`, `"enabled": true, "risk_threshold": 2, "prior"`), wantCode: 400, wantField: "bayesian.risk_threshold"},
		{name: "lookback", body: mutate(`"28d"`, `"forever"`), wantCode: 400, wantField: "cuped.lookback"},
		{name: "lookback too long", body: mutate(`"28d"`, `"400d"`), wantCode: 400, wantField: "cuped.lookback"},
		{name: "segment key", body: mutate(`"country"]`, `"country code"]`), wantCode: 400, wantField: "segments[1]"},
		{name: "duplicate segment", body: mutate(`"country"]`, `"platform"]`), wantCode: 400, wantField: "segments[1]"},
		{name: "ratio without denominator", body: mutate(`, "denominator": "sessions"`, ``), wantCode: 400, wantField: "metrics[0].denominator"},
		{name: "ratio of itself", body: mutate(`"numerator": "revenue"`, `"numerator": "revenue_per_session"`), wantCode: 400, wantField: "metrics[0].numerator"},
		{name: "numerator on continuous", body: mutate(`"role": "guardrail",`, `"role": "guardrail", "numerator": "x",`), wantCode: 400, wantField: "metrics[1].numerator"},
		{name: "margin on secondary", body: mutate(`"role": "guardrail"`, `"role": "secondary"`), wantCode: 400, wantField: "metrics[1].non_inferiority_margin"},
		{name: "relative margin 1", body: mutate(`0.02`, `1`), wantCode: 400, wantField: "metrics[1].non_inferiority_margin"},
		{name: "margin type", body: mutate(`0.02`, `0.02, "non_inferiority_margin_type": "percent"`), wantCode: 400, wantField: "metrics[1].non_inferiority_margin_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, raw := h.doRaw("POST", "/api/ab-testing/tests", "application/json", tt.body)
			if code != tt.wantCode {
				t.Fatalf("POST /tests = %d %s, want %d", code, raw, tt.wantCode)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("response %q is not JSON: %v", raw, err)
			}
			if code >= 400 {
				if got, _ := body["field"].(string); got != tt.wantField {
					t.Errorf("error field = %q, want %q (%s)", got, tt.wantField, raw)
				}
				return
			}
			_, got := h.do("GET", "/api/ab-testing/tests/"+body["test_id"].(string), "")
			for _, k := range []string{"analysis_method", "sequential_tuning_n", "bayesian", "cuped", "segments", "metrics"} {
				if d := cmp.Diff(body[k], got[k]); d != "" || got[k] == nil {
					t.Errorf("GET %s differs from the created test (-created +got):\n%s", k, d)
				}
			}
		})
	}

	// Defaults are filled and stored.
	code, body := h.do("POST", "/api/ab-testing/tests", mutate(`"sequential_tuning_n": 20000,`, ``))
	if code != 201 {
		t.Fatalf("create = %d %v", code, body)
	}
	_, got := h.do("GET", "/api/ab-testing/tests/"+body["test_id"].(string), "")
	metrics := got["metrics"].([]any)
	want := map[string]any{
		"analysis_method":     "sequential",
		"sequential_tuning_n": 5000.0,
		"bayesian":            map[string]any{"enabled": true, "prior": map[string]any{"mean": 0.0, "sd": 0.3}, "risk_threshold": 0.0025},
		"cuped":               map[string]any{"enabled": true, "lookback": "28d"},
		"latency margin type": "relative",
	}
	gotSome := map[string]any{
		"analysis_method": got["analysis_method"], "sequential_tuning_n": got["sequential_tuning_n"],
		"bayesian": got["bayesian"], "cuped": got["cuped"],
		"latency margin type": metrics[1].(map[string]any)["non_inferiority_margin_type"],
	}
	if d := cmp.Diff(want, gotSome); d != "" {
		t.Errorf("stored defaults (-want +got):\n%s", d)
	}
	// A plain test says fixed_horizon.
	_, plain := h.do("POST", "/api/ab-testing/tests", validCreate)
	if plain["analysis_method"] != "fixed_horizon" || plain["bayesian"] != nil {
		t.Errorf("plain test = %v, want analysis_method fixed_horizon and no bayesian block", plain)
	}
}

// TestAttributesAndCovariates sends assignment attributes and result
// covariates through /assign, /record and the batch endpoint, checks the
// published events carry them, and that malformed ones get a 400 naming
// the field.
func TestAttributesAndCovariates(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.createRunning()
	base := "/api/ab-testing/tests/" + id
	steps := []struct {
		path, body string
		wantCode   int
		wantField  string
	}{
		{"/assign", `{"user_id": "u1", "attributes": {"platform": "ios", "country": "DE"}}`, 200, ""},
		{"/assign", `{"user_id": "u2", "attributes": {"platform": ""}}`, 400, "attributes.platform"},
		{"/assign", `{"user_id": "u2", "attributes": {"plat form": "ios"}}`, 400, "attributes"},
		{"/assign", `{"user_id": "u2", "attributes": {"platform": "` + strings.Repeat("x", 129) + `"}}`, 400, "attributes.platform"},
		{"/assign", `{"user_id": "u2", "attributes": {"platform": 3}}`, 400, "attributes"},
		{"/record", `{"user_id": "u1", "metrics": {"revenue": 10, "conversion": 1}, "covariates": {"revenue": 8.5}}`, 202, ""},
		{"/record", `{"user_id": "u1", "metrics": {"revenue": 10}, "covariates": {"clicks": 8.5}}`, 400, "covariates"},
		{"/record", `{"user_id": "u1", "metrics": {"revenue": 10}, "covariates": {"revenue": null}}`, 400, "covariates.revenue"},
	}
	for _, s := range steps {
		code, body := h.do("POST", base+s.path, s.body)
		if code != s.wantCode {
			t.Fatalf("POST %s %s = %d %v, want %d", s.path, s.body, code, body, s.wantCode)
		}
		if got, _ := body["field"].(string); code >= 400 && got != s.wantField {
			t.Errorf("POST %s %s field = %q, want %q (%v)", s.path, s.body, got, s.wantField, body)
		}
	}
	many := map[string]string{}
	for i := range 21 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	raw, _ := json.Marshal(map[string]any{"user_id": "u3", "attributes": many})
	if code, body := h.do("POST", base+"/assign", string(raw)); code != http.StatusBadRequest || body["field"] != "attributes" {
		t.Errorf("21 attributes = %d %v, want 400 on attributes", code, body)
	}

	code, r := h.batch("application/json", `[
		{"type": "assignment", "test_id": "`+id+`", "user_id": "u4", "attributes": {"platform": "android"}},
		{"type": "result", "test_id": "`+id+`", "user_id": "u4", "metrics": {"revenue": 3}, "covariates": {"revenue": 2}},
		{"type": "assignment", "test_id": "`+id+`", "user_id": "u5", "covariates": {"revenue": 2}},
		{"type": "result", "test_id": "`+id+`", "user_id": "u5", "metrics": {"revenue": 3}, "attributes": {"platform": "ios"}},
		{"type": "assignment", "test_id": "`+id+`", "user_id": "u6", "attributes": {"platform": ""}}]`)
	if code != http.StatusMultiStatus || r.Accepted != 2 || r.Rejected != 3 {
		t.Fatalf("batch = %d %+v, want 207 with 2 accepted and 3 rejected", code, r)
	}
	for i, field := range map[int]string{2: "covariates", 3: "attributes", 4: "attributes.platform"} {
		if r.Results[i].Field != field {
			t.Errorf("results[%d] = %+v, want rejected on %s", i, r.Results[i], field)
		}
	}

	attrs := map[string]map[string]string{}
	for _, data := range streamEvents(t, h.bus.JS, eventv1.SubjectAssignment) {
		var a eventv1.Assignment
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		attrs[a.UserID] = a.Attributes
	}
	wantAttrs := map[string]map[string]string{"u1": {"platform": "ios", "country": "DE"}, "u4": {"platform": "android"}}
	if d := cmp.Diff(wantAttrs, attrs); d != "" {
		t.Errorf("published attributes (-want +got):\n%s", d)
	}
	covs := map[string]map[string]float64{}
	for _, data := range streamEvents(t, h.bus.JS, eventv1.SubjectResult) {
		var res eventv1.Result
		if err := json.Unmarshal(data, &res); err != nil {
			t.Fatal(err)
		}
		if err := res.Validate(); err != nil {
			t.Errorf("published result %s: %v", data, err)
		}
		covs[res.UserID] = res.Covariates
	}
	wantCovs := map[string]map[string]float64{"u1": {"revenue": 8.5}, "u4": {"revenue": 2}}
	if d := cmp.Diff(wantCovs, covs); d != "" {
		t.Errorf("published covariates (-want +got):\n%s", d)
	}
}

// TestOpenAPIDescribesEveryField checks that every JSON field of the
// definition and report types is a property of its schema in
// schemas/openapi.yaml, so that a field added in Go cannot go undocumented.
func TestOpenAPIDescribesEveryField(t *testing.T) {
	doc := loadSpec(t)
	schemasOf, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, v := range map[string]any{
		"Test": experiment.Test{}, "Metric": experiment.Metric{}, "BayesianOptions": experiment.Bayesian{},
		"CUPEDOptions": experiment.CUPED{}, "CreateTestRequest": createTestRequest{},
		"AssignRequest": assignRequest{}, "RecordRequest": recordRequest{}, "BatchEvent": batchEvent{},
		"Report": experiment.Report{}, "MetricReport": experiment.MetricReport{}, "VariantStats": experiment.VariantStats{},
		"Comparison": experiment.Comparison{}, "ReportHealth": experiment.Health{}, "SRMCheck": experiment.SRMCheck{},
		"RatioStats": experiment.RatioStats{}, "SequentialResult": experiment.SequentialResult{},
		"BayesianResult": experiment.BayesianResult{}, "NonInferiorityResult": experiment.NonInferiorityResult{},
		"CUPEDResult": experiment.CUPEDResult{}, "SegmentReport": experiment.SegmentReport{},
		"SegmentResult": experiment.SegmentResult{}, "HeterogeneityScan": experiment.HeterogeneityScan{},
		"SegmentHeterogeneity": experiment.SegmentHeterogeneity{},
	} {
		schema, _ := schemasOf[name].(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			t.Errorf("schema %s has no properties", name)
			continue
		}
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if _, ok := props[tag]; !ok {
				t.Errorf("schema %s lacks property %s (Go field %s.%s)", name, tag, typ.Name(), typ.Field(i).Name)
			}
		}
	}
}
