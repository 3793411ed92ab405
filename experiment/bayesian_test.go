package experiment

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPriorJSON(t *testing.T) {
	tests := []struct {
		in, out string
		want    Prior
		invalid bool
	}{
		{in: `"flat"`, out: `"flat"`},
		{in: `null`, out: `"flat"`},
		{in: `{"mean": 0, "sd": 0.3}`, out: `{"mean":0,"sd":0.3}`, want: Prior{Normal: true, SD: 0.3}},
		{in: `"informative"`, invalid: true},
		{in: `{"mean": 0}`, invalid: true},
		{in: `{"mean": 0, "sd": 1, "df": 3}`, invalid: true},
		{in: `7`, invalid: true},
	}
	for _, tt := range tests {
		var p Prior
		if err := json.Unmarshal([]byte(tt.in), &p); err != nil {
			t.Fatalf("Unmarshal(%s) = %v, want nil (Validate reports)", tt.in, err)
		}
		if got := p.invalid != ""; got != tt.invalid {
			t.Errorf("Unmarshal(%s) invalid = %v, want %v", tt.in, got, tt.invalid)
			continue
		}
		if tt.invalid {
			continue
		}
		if d := cmp.Diff(tt.want, p, cmp.AllowUnexported(Prior{})); d != "" {
			t.Errorf("Unmarshal(%s) (-want +got):\n%s", tt.in, d)
		}
		if b, _ := json.Marshal(p); string(b) != tt.out {
			t.Errorf("Marshal(%s) = %s, want %s", tt.in, b, tt.out)
		}
	}
}
