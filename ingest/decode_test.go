package ingest

import (
	"errors"
	"os"
	"testing"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// addMessage decodes a message and appends its valid events to b, as
// Consumer.process does (without the redelivery lookup). It returns the
// message's permanent error, or that of its first invalid line.
func addMessage(b *Batch, subject string, data []byte, seq uint64) error {
	evs, poison, err := decodeMessage(subject, data)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		b.append(ev, seq)
	}
	if len(poison) > 0 {
		return poison[0].err
	}
	return nil
}

func TestDecodeAndAppend(t *testing.T) {
	asg, err := os.ReadFile("../schemas/eventv1/testdata/assignment.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := os.ReadFile("../schemas/eventv1/testdata/result.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		subject       string
		data          string
		wantPermanent bool
	}{
		{"assignment sample", eventv1.SubjectAssignment, string(asg), false},
		{"result sample", eventv1.SubjectResult, string(res), false},
		{"not json", eventv1.SubjectResult, "{", true},
		{"result on assignment subject", eventv1.SubjectAssignment, string(res), false},
		{"assignment on result subject", eventv1.SubjectResult, string(asg), true},
		{"missing user", eventv1.SubjectResult, `{"event_id":"e","test_id":"t","variant_id":"v","metrics":{"m":1},"timestamp":"2026-01-01T00:00:00Z"}`, true},
		{"unknown subject", "ab.other.v1", string(res), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			err := addMessage(&b, tt.subject, []byte(tt.data), 7)
			var pe *permanentError
			if got := errors.As(err, &pe); got != tt.wantPermanent {
				t.Fatalf("addMessage(%s) = %v, want permanent error %v", tt.subject, err, tt.wantPermanent)
			}
		})
	}
	var b Batch
	if err := addMessage(&b, eventv1.SubjectResult, res, 9); err != nil {
		t.Fatal(err)
	}
	a, r := len(b.assignments.testID), len(b.results.testID)
	if a != 0 || r != 2 {
		t.Errorf("rows = %d, %d, want 0 assignments and 2 result rows (one per metric)", a, r)
	}
	if b.results.streamSeq[0] != 9 || b.results.userID[0] != "user-42" {
		t.Errorf("result columns = %+v", b.results)
	}
}

// BenchmarkDecodeAndAppend is what ingest does per single-event message:
// decodeMessage, then append of the event's rows to the batch.
func BenchmarkDecodeAndAppend(b *testing.B) {
	res, err := os.ReadFile("../schemas/eventv1/testdata/result.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var batch Batch
	i := 0
	for b.Loop() {
		if i%10000 == 0 {
			batch = Batch{}
		}
		i++
		if err := addMessage(&batch, eventv1.SubjectResult, res, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendOptionalData(t *testing.T) {
	var b Batch
	if err := addMessage(&b, eventv1.SubjectResult, []byte(`{"event_id": "e", "test_id": "t", "user_id": "u", "variant_id": "v",
		"metrics": {"m": 1, "n": 2}, "covariates": {"m": 0.5}, "timestamp": "2026-11-26T00:00:00Z"}`), 7); err != nil {
		t.Fatal(err)
	}
	if err := addMessage(&b, eventv1.SubjectResult, []byte(`{"event_id": "e", "test_id": "t", "user_id": "u", "variant_id": "v",
		"metrics": {"m": 1}, "covariates": {"x": 0.5}, "timestamp": "2026-11-26T00:00:00Z"}`), 8); err == nil {
		t.Errorf("a covariate of no metric was accepted")
	}
	if got := len(b.covariates.testID); got != 1 || b.covariates.covariate[0] != 0.5 || b.covariates.streamSeq[0] != 7 {
		t.Errorf("covariate rows = %+v, want one row 0.5 at seq 7", b.covariates)
	}
}
