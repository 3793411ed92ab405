package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Batch is a set of decoded events, column by column, ready to insert.
type Batch struct {
	assignments assignmentCols
	results     resultCols
	// attributes and covariates hold the optional data of the events that
	// carry it (migration 0004), written before the main rows.
	attributes attributeCols
	covariates covariateCols
}

type attributeCols struct {
	testID, variantID, userID, eventID []string
	keys, values                       [][]string
	eventTime                          []time.Time
	streamSeq                          []uint64
}

type covariateCols struct {
	testID, variantID, userID, metric, eventID []string
	covariate                                  []float64
	eventTime                                  []time.Time
	streamSeq                                  []uint64
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

// append adds the rows of one decoded event, from the message at stream
// sequence seq.
func (b *Batch) append(e event, seq uint64) {
	if a := e.assignment; a != nil {
		c := &b.assignments
		c.testID = append(c.testID, a.TestID)
		c.variantID = append(c.variantID, a.VariantID)
		c.userID = append(c.userID, a.UserID)
		c.eventID = append(c.eventID, a.EventID)
		c.eventTime = append(c.eventTime, a.Timestamp.UTC())
		c.streamSeq = append(c.streamSeq, seq)
		if len(a.Attributes) > 0 {
			b.appendAttributes(a, seq)
		}
		return
	}
	r := e.result
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
		if x, ok := r.Covariates[name]; ok {
			v := &b.covariates
			v.testID = append(v.testID, r.TestID)
			v.variantID = append(v.variantID, r.VariantID)
			v.userID = append(v.userID, r.UserID)
			v.metric = append(v.metric, name)
			v.covariate = append(v.covariate, x)
			v.eventID = append(v.eventID, r.EventID)
			v.eventTime = append(v.eventTime, r.Timestamp.UTC())
			v.streamSeq = append(v.streamSeq, seq)
		}
	}
}

// appendAttributes stores an assignment's attributes as parallel arrays,
// keys sorted so that equal attribute sets give equal rows.
func (b *Batch) appendAttributes(a *eventv1.Assignment, seq uint64) {
	keys := make([]string, 0, len(a.Attributes))
	for k := range a.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = a.Attributes[k]
	}
	c := &b.attributes
	c.testID = append(c.testID, a.TestID)
	c.variantID = append(c.variantID, a.VariantID)
	c.userID = append(c.userID, a.UserID)
	c.keys = append(c.keys, keys)
	c.values = append(c.values, values)
	c.eventID = append(c.eventID, a.EventID)
	c.eventTime = append(c.eventTime, a.Timestamp.UTC())
	c.streamSeq = append(c.streamSeq, seq)
}

// Writer inserts batches into ClickHouse.
type Writer struct {
	conn    driver.Conn
	metrics *metrics
}

// Write inserts the batch: one INSERT per non-empty table. The optional
// attribute and covariate rows go first: the redelivery lookup (stored)
// reads only assignments and results, so an event whose main rows are
// stored is complete, and an event redelivered after a failure between the
// two may repeat its optional rows, which the analysis reads once per
// event_id.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	start := time.Now()
	a, c, as, r := &b.attributes, &b.covariates, &b.assignments, &b.results
	for _, t := range []struct {
		table, columns string
		rows           int
		cols           []any
	}{
		{"assignment_attributes", "test_id, variant_id, user_id, attribute_keys, attribute_values, event_id, event_time, stream_seq",
			len(a.testID), []any{a.testID, a.variantID, a.userID, a.keys, a.values, a.eventID, a.eventTime, a.streamSeq}},
		{"result_covariates", "test_id, variant_id, user_id, metric, covariate, event_id, event_time, stream_seq",
			len(c.testID), []any{c.testID, c.variantID, c.userID, c.metric, c.covariate, c.eventID, c.eventTime, c.streamSeq}},
		{"assignments", "test_id, variant_id, user_id, event_id, event_time, stream_seq",
			len(as.testID), []any{as.testID, as.variantID, as.userID, as.eventID, as.eventTime, as.streamSeq}},
		{"results", "test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq",
			len(r.testID), []any{r.testID, r.variantID, r.userID, r.metric, r.value, r.eventID, r.eventTime, r.streamSeq}},
	} {
		if t.rows == 0 {
			continue
		}
		if err := w.insert(ctx, "INSERT INTO "+t.table+" ("+t.columns+")", t.cols...); err != nil {
			return fmt.Errorf("inserting %d rows into %s: %w", t.rows, t.table, err)
		}
		w.metrics.rows.WithLabelValues(t.table).Add(float64(t.rows))
	}
	w.metrics.insertDuration.Observe(time.Since(start).Seconds())
	return nil
}

// lookupChunk bounds the ids of one lookup query; with about 40 bytes per
// id a query stays far below maxLookupQuery.
const (
	lookupChunk    = 10_000
	maxLookupQuery = 32 << 20
)

// stored returns the keys (event.key) of those events that ClickHouse
// already holds. It is asked only about suspect messages (redelivered, or at
// or below the high-water mark after a restart), whose earlier delivery may
// have been inserted before the process died or the ack was lost. The
// queries filter on test_id, the head of both tables' sort key.
func (w *Writer) stored(ctx context.Context, events []event) (map[string]bool, error) {
	type ids struct{ tests, events []string }
	var asg, res ids
	for _, e := range events {
		if a := e.assignment; a != nil {
			asg.tests, asg.events = append(asg.tests, a.TestID), append(asg.events, a.EventID)
		} else {
			res.tests, res.events = append(res.tests, e.result.TestID), append(res.events, e.result.EventID)
		}
	}
	// The id lists are bound into the query text: allow a long query.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": maxLookupQuery}))
	out := map[string]bool{}
	for _, q := range []struct {
		table, prefix string
		ids           ids
	}{{"assignments", "a", asg}, {"results", "r", res}} {
		for lo := 0; lo < len(q.ids.events); lo += lookupChunk {
			hi := min(lo+lookupChunk, len(q.ids.events))
			if err := w.lookup(ctx, q.table, q.prefix, q.ids.tests[lo:hi], q.ids.events[lo:hi], out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (w *Writer) lookup(ctx context.Context, table, prefix string, tests, events []string, out map[string]bool) error {
	rows, err := w.conn.Query(ctx, "SELECT DISTINCT test_id, event_id FROM "+table+
		" WHERE test_id IN (SELECT arrayJoin(?)) AND event_id IN (SELECT arrayJoin(?))", dedupe(tests), events)
	if err != nil {
		return fmt.Errorf("looking up redelivered events in %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var test, id string
		if err := rows.Scan(&test, &id); err != nil {
			return fmt.Errorf("looking up redelivered events in %s: %w", table, err)
		}
		out[prefix+"\x00"+test+"\x00"+id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking up redelivered events in %s: %w", table, err)
	}
	return nil
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, 4)
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// recordIntent stores, before a batch is inserted, the highest stream
// sequence it holds. After a crash, highWater tells which redelivered
// messages may already be stored, even when the NATS server restarted too
// and forgot that it had delivered them.
func (w *Writer) recordIntent(ctx context.Context, consumer string, seq uint64) error {
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO ingest_intents (consumer, stream_seq)")
	if err != nil {
		return fmt.Errorf("recording ingest intent: %w", err)
	}
	if err := b.Append(consumer, seq); err != nil {
		_ = b.Abort()
		return fmt.Errorf("recording ingest intent: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("recording ingest intent: %w", err)
	}
	return nil
}

// highWater returns the highest stream sequence any ingest process meant to
// insert for consumer (0 when none).
func (w *Writer) highWater(ctx context.Context, consumer string) (uint64, error) {
	var seq uint64
	err := w.conn.QueryRow(ctx, "SELECT max(stream_seq) FROM ingest_intents WHERE consumer = ?", consumer).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("reading the ingest high-water mark: %w", err)
	}
	return seq, nil
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
