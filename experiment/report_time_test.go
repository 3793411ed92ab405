package experiment

import (
	"encoding/json"
	"testing"
	"time"
)

func TestReportComputedAt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	data, err := json.Marshal(Report{TestID: "t", ComputedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReportComputedAt(data); err != nil || !got.Equal(at) {
		t.Errorf("ReportComputedAt(%s) = %v, %v, want %v", data, got, err, at)
	}
	if _, err := ReportComputedAt([]byte("{")); err == nil {
		t.Errorf("ReportComputedAt(%q) = nil error, want one", "{")
	}
}
