package experiment

import (
	"encoding/json"
	"fmt"
	"time"
)

// ReportComputedAt returns the computed_at of a report's JSON (as stored in
// the reports bucket) without decoding the rest. The analyzer, deciding
// whether a stored report is recent enough, and the API, deciding whether
// it is fresh enough to serve, read it here.
func ReportComputedAt(report []byte) (time.Time, error) {
	var head struct {
		ComputedAt time.Time `json:"computed_at"`
	}
	if err := json.Unmarshal(report, &head); err != nil {
		return time.Time{}, fmt.Errorf("decoding computed_at: %w", err)
	}
	return head.ComputedAt, nil
}
