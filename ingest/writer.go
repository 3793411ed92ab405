package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Batch is a set of decoded events, column by column, ready to insert.
type Batch struct {
	assignments assignmentCols
	results     resultCols
}

type assignmentCols struct {
	testID, variantID, userID, eventID []string
	eventTime                          []time.Time
	streamSeq                          []uint64
}

type resultCols struct {
	testID, variantID, userID, metric, eventID []string
	value                                      []float64
	eventTime                                  []time.Time
	streamSeq                                  []uint64
}

// permanentError marks an event that can never be stored: retrying it cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Add decodes one message into the batch. Its error is permanent: the
// message is malformed or of an unknown subject.
func (b *Batch) Add(m jetstream.Msg) error {
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	return b.add(m.Subject(), m.Data(), seq)
}

func (b *Batch) add(subject string, data []byte, seq uint64) error {
	switch subject {
	case eventv1.SubjectAssignment:
		var a eventv1.Assignment
		if err := json.Unmarshal(data, &a); err != nil {
			return &permanentError{fmt.Errorf("decoding assignment: %w", err)}
		}
		if err := a.Validate(); err != nil {
			return &permanentError{fmt.Errorf("invalid assignment: %w", err)}
		}
		c := &b.assignments
		c.testID = append(c.testID, a.TestID)
		c.variantID = append(c.variantID, a.VariantID)
		c.userID = append(c.userID, a.UserID)
		c.eventID = append(c.eventID, a.EventID)
		c.eventTime = append(c.eventTime, a.Timestamp.UTC())
		c.streamSeq = append(c.streamSeq, seq)
	case eventv1.SubjectResult:
		var r eventv1.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return &permanentError{fmt.Errorf("decoding result: %w", err)}
		}
		if err := r.Validate(); err != nil {
			return &permanentError{fmt.Errorf("invalid result: %w", err)}
		}
		c := &b.results
		for name, v := range r.Metrics {
			c.testID = append(c.testID, r.TestID)
			c.variantID = append(c.variantID, r.VariantID)
			c.userID = append(c.userID, r.UserID)
			c.metric = append(c.metric, name)
			c.value = append(c.value, v)
			c.eventID = append(c.eventID, r.EventID)
			c.eventTime = append(c.eventTime, r.Timestamp.UTC())
			c.streamSeq = append(c.streamSeq, seq)
		}
	default:
		return &permanentError{fmt.Errorf("unknown subject %q", subject)}
	}
	return nil
}

// Rows returns the number of assignment and result rows in the batch.
func (b *Batch) Rows() (assignments, results int) {
	return len(b.assignments.testID), len(b.results.testID)
}

// Writer inserts batches into ClickHouse.
type Writer struct {
	conn    driver.Conn
	metrics *metrics
}

// Write inserts the batch: one INSERT per non-empty table.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	start := time.Now()
	if c := &b.assignments; len(c.testID) > 0 {
		err := w.insert(ctx,
			"INSERT INTO assignments (test_id, variant_id, user_id, event_id, event_time, stream_seq)",
			c.testID, c.variantID, c.userID, c.eventID, c.eventTime, c.streamSeq)
		if err != nil {
			return fmt.Errorf("inserting %d assignments: %w", len(c.testID), err)
		}
		w.metrics.rows.WithLabelValues("assignments").Add(float64(len(c.testID)))
	}
	if c := &b.results; len(c.testID) > 0 {
		err := w.insert(ctx,
			"INSERT INTO results (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)",
			c.testID, c.variantID, c.userID, c.metric, c.value, c.eventID, c.eventTime, c.streamSeq)
		if err != nil {
			return fmt.Errorf("inserting %d results: %w", len(c.testID), err)
		}
		w.metrics.rows.WithLabelValues("results").Add(float64(len(c.testID)))
	}
	w.metrics.insertDuration.Observe(time.Since(start).Seconds())
	return nil
}

// insert sends one batch, appending column by column (faster than row by
// row), with the explicit column list that ClickHouse 18.16 needs.
func (w *Writer) insert(ctx context.Context, query string, cols ...any) error {
	batch, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("preparing batch: %w", err)
	}
	for i, col := range cols {
		if err := batch.Column(i).Append(col); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("appending column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("sending batch: %w", err)
	}
	return nil
}
