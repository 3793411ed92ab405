// Package eventv1 is version 1 of the wire contract between the API, which
// publishes events to NATS JetStream, and ingest, which stores them in
// ClickHouse. The JSON Schemas in schemas/*.v1.schema.json describe the same
// payloads for other languages; testdata/*.json holds canonical samples.
//
// A published event is never changed in place: a breaking change gets a new
// subject (ab.result.v2) and a new package. The package imports only the
// standard library and never the domain package, so that a domain refactor
// cannot silently change the wire format.
package eventv1

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// JetStream names.
const (
	// Stream holds every event until ingest has stored it.
	Stream = "AB_EVENTS"
	// SubjectAssignment carries Assignment events (a user was shown a variant).
	SubjectAssignment = "ab.assignment.v1"
	// SubjectResult carries Result events (metric values observed for a user).
	SubjectResult = "ab.result.v1"
	// SubjectAssignmentBatch and SubjectResultBatch carry many events in
	// one message: newline-delimited JSON, one Assignment (Result) per
	// line, at most MaxBatchEvents lines and MaxBatchBytes bytes. The API
	// publishes its batch endpoint's events this way, because JetStream's
	// cost is per message; one message is acknowledged (and deduplicated
	// by its message id) as a whole. Ingest stores each valid line and
	// dead-letters each invalid one on its own.
	SubjectAssignmentBatch = "ab.assignment.batch.v1"
	SubjectResultBatch     = "ab.result.batch.v1"
	// ConsumerIngest is the durable pull consumer that stores events in ClickHouse.
	ConsumerIngest = "ingest-clickhouse"

	// StreamDeadLetter keeps events that ingest could not store because they
	// are malformed, with the reason, for an operator to inspect.
	StreamDeadLetter = "AB_DEADLETTER"
	// SubjectDeadLetter carries a poison event's original payload unchanged.
	SubjectDeadLetter = "ab.deadletter.v1"
	// Headers of a dead-lettered message.
	HeaderDeadLetterReason  = "Abacus-Deadletter-Reason"
	HeaderOriginalSubject   = "Abacus-Original-Subject"
	HeaderOriginalStreamSeq = "Abacus-Original-Stream-Seq"
	// HeaderOriginalLine is the 0-based line of a dead-lettered event in
	// its batch message (batch subjects only).
	HeaderOriginalLine = "Abacus-Original-Line"
)

// Subjects returns every subject of Stream.
func Subjects() []string {
	return []string{SubjectAssignment, SubjectResult, SubjectAssignmentBatch, SubjectResultBatch}
}

// Assignment records that a user was assigned (and exposed) to a variant.
type Assignment struct {
	EventID   string    `json:"event_id"`
	TestID    string    `json:"test_id"`
	UserID    string    `json:"user_id"`
	VariantID string    `json:"variant_id"`
	Timestamp time.Time `json:"timestamp"`
	// Attributes describe the user for segment analysis (platform,
	// country): at most MaxAttributes, string values. Optional: producers
	// before it was added never send it.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Result records metric values observed for a user in a variant.
type Result struct {
	EventID   string             `json:"event_id"`
	TestID    string             `json:"test_id"`
	UserID    string             `json:"user_id"`
	VariantID string             `json:"variant_id"`
	Metrics   map[string]float64 `json:"metrics"`
	Timestamp time.Time          `json:"timestamp"`
	// Covariates are pre-experiment values per metric (the user's value of
	// the metric before the test) for CUPED; every key is one of Metrics'.
	// Optional: producers before it was added never send it.
	Covariates map[string]float64 `json:"covariates,omitempty"`
}

// Limits that every producer must respect.
const (
	MaxIDBytes      = 128
	MaxMetrics      = 100
	MaxMetricBytes  = 128
	MaxEventIDBytes = 64

	// A batch message holds at most MaxBatchEvents events and
	// MaxBatchBytes bytes (NATS refuses messages over its max_payload, 1 MiB
	// by default).
	MaxBatchEvents = 1000
	MaxBatchBytes  = 512 << 10

	MaxAttributes          = 20
	MaxAttributeKeyBytes   = 64
	MaxAttributeValueBytes = 128
)

var errEmpty = errors.New("is empty")

func checkID(field, v string, limit int) error {
	if v == "" {
		return fmt.Errorf("%s %w", field, errEmpty)
	}
	if len(v) > limit {
		return fmt.Errorf("%s is longer than %d bytes", field, limit)
	}
	return nil
}

// Validate checks the fields that ingest relies on.
func (a *Assignment) Validate() error {
	for _, f := range []struct {
		name, v string
		limit   int
	}{
		{"event_id", a.EventID, MaxEventIDBytes},
		{"test_id", a.TestID, MaxIDBytes},
		{"user_id", a.UserID, MaxIDBytes},
		{"variant_id", a.VariantID, MaxIDBytes},
	} {
		if err := checkID(f.name, f.v, f.limit); err != nil {
			return err
		}
	}
	if a.Timestamp.IsZero() {
		return errors.New("timestamp is missing")
	}
	if len(a.Attributes) > MaxAttributes {
		return fmt.Errorf("attributes has more than %d entries", MaxAttributes)
	}
	for k, v := range a.Attributes {
		if err := checkID("attribute key", k, MaxAttributeKeyBytes); err != nil {
			return err
		}
		if err := checkID("attribute "+k, v, MaxAttributeValueBytes); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the fields that ingest relies on.
func (r *Result) Validate() error {
	for _, f := range []struct {
		name, v string
		limit   int
	}{
		{"event_id", r.EventID, MaxEventIDBytes},
		{"test_id", r.TestID, MaxIDBytes},
		{"user_id", r.UserID, MaxIDBytes},
		{"variant_id", r.VariantID, MaxIDBytes},
	} {
		if err := checkID(f.name, f.v, f.limit); err != nil {
			return err
		}
	}
	if r.Timestamp.IsZero() {
		return errors.New("timestamp is missing")
	}
	if len(r.Metrics) == 0 {
		return errors.New("metrics is empty")
	}
	if len(r.Metrics) > MaxMetrics {
		return fmt.Errorf("metrics has more than %d entries", MaxMetrics)
	}
	for name, v := range r.Metrics {
		if err := checkID("metric name", name, MaxMetricBytes); err != nil {
			return err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metric %q is not a finite number", name)
		}
	}
	for name, v := range r.Covariates {
		if _, ok := r.Metrics[name]; !ok {
			return fmt.Errorf("covariate %q names no metric of the event", name)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("covariate %q is not a finite number", name)
		}
	}
	return nil
}

// Analysis requests: the API asks an analyzer, over NATS request-reply in
// the queue group QueueAnalyzers, to compute a test's report now. The reply's
// body is the report's JSON; on failure the reply carries HeaderError (a
// message) and HeaderStatus (an HTTP status code) and no body.
const (
	SubjectAnalyze = "ab.rpc.analyze.v1"
	QueueAnalyzers = "analyzers"
	HeaderError    = "Abacus-Error"
	HeaderStatus   = "Abacus-Status"
)

// AnalyzeRequest is the body of a request on SubjectAnalyze.
type AnalyzeRequest struct {
	TestID string `json:"test_id"`
}

// History requests go the same way (queue group QueueAnalyzers, errors in
// HeaderError and HeaderStatus): the API has no ClickHouse access, the
// analyzer answers.
const (
	// SubjectHistory carries a HistoryRequest; the reply is the response
	// body of GET .../analyze/history.
	SubjectHistory = "ab.rpc.history.v1"
)

// HistoryRequest is the body of a request on SubjectHistory. An empty Metric
// means the test's primary metric.
type HistoryRequest struct {
	TestID string `json:"test_id"`
	Metric string `json:"metric,omitempty"`
}
