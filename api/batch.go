package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// MaxBatchEvents is the most events one POST /events takes.
const MaxBatchEvents = 10_000

// asyncPublisher publishes without waiting (met by jetstream.JetStream).
type asyncPublisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Outcomes of one batch element.
const (
	outcomeAccepted = "accepted"
	outcomeRejected = "rejected" // invalid: do not retry unchanged
	outcomeFailed   = "failed"   // not stored: retry with the same event_id
)

type batchItem struct {
	Index     int    `json:"index"`
	Status    string `json:"status"`
	EventID   string `json:"event_id,omitempty"`
	VariantID string `json:"variant_id,omitempty"` // the variant an assignment event gave the user
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     string `json:"error,omitempty"`
	Field     string `json:"field,omitempty"`
	// Rule names the input validation rule that rejected the event.
	Rule string `json:"rule,omitempty"`
}

type batchResponse struct {
	Accepted   int         `json:"accepted"`
	Rejected   int         `json:"rejected"`
	Failed     int         `json:"failed"`
	Duplicates int         `json:"duplicates"`
	Results    []batchItem `json:"results"`
}

// ingestBatch is POST /api/ab-testing/events: up to MaxBatchEvents events as a
// JSON array or as newline-delimited JSON (Content-Type
// application/x-ndjson). Each event is validated on its own; the valid ones
// are published in batch messages (packBatch) and the answer comes after
// JetStream has acknowledged every one of them. The response lists every
// element by index: accepted (with its event_id), rejected (invalid, with
// the reason) or failed (not acknowledged: retry the request unchanged, so
// that JetStream recognises its messages; events retried in another
// grouping are stored again and counted once by the analysis). Status: 202
// when all are accepted, 207 when some are rejected, 400 when none is
// valid, 503 when any failed to publish.
func (s *Server) ingestBatch(c echo.Context) error {
	if s.async == nil {
		return newError(http.StatusNotImplemented, "this server cannot publish batches")
	}
	events, err := s.readBatch(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	resp := batchResponse{Results: make([]batchItem, len(events))}
	valid, repeats := s.batchElements(ctx, events, resp.Results)
	// The publish timeout starts after validation, which may have read tests.
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	s.publishBatch(pctx, packBatch(valid), resp.Results)
	for _, r := range repeats {
		item, first := &resp.Results[r[0]], resp.Results[r[1]]
		item.Status, item.Error = first.Status, first.Error
		item.Duplicate = first.Status == outcomeAccepted
	}
	code := resp.count()
	// Encoded with go-json as the events are: a response names every
	// element, and encoding/json would spend as long on it as on reading
	// the request.
	out, err := gojson.Marshal(resp)
	if err != nil {
		return err
	}
	return c.JSONBlob(code, out)
}

// batchElements builds the event of each element read, into valid, and
// fills in results: rejected elements with their error, the others with
// their event id. An event repeated in the same batch is published once:
// repeats pairs the index of each repeat with that of its first occurrence,
// which it answers as, marked duplicate.
func (s *Server) batchElements(ctx context.Context, events []readEvent, results []batchItem) (valid []element, repeats [][2]int) {
	now := s.now().UTC()
	tests := map[string]*experiment.Test{}
	valid = make([]element, 0, len(events))
	seen := make(map[eventKey]int, len(events))
	for i := range events {
		item := &results[i]
		item.Index = i
		var el element
		var err error
		if events[i].err != nil {
			err = events[i].err
		} else {
			el, err = s.batchElement(ctx, &events[i].ev, tests, now)
		}
		if err != nil {
			status, body := classify(err)
			item.Status, item.Error, item.Field, item.Rule = outcomeRejected, body.Error, body.Field, body.Rule
			if status >= 500 {
				item.Status = outcomeFailed
			}
			continue
		}
		el.index = i
		item.EventID = el.eventID
		if el.subject == eventv1.SubjectAssignment {
			item.VariantID = el.variantID
		}
		key := eventKey{el.subject, el.testID, el.eventID}
		if first, ok := seen[key]; ok {
			repeats = append(repeats, [2]int{i, first})
			continue
		}
		seen[key] = i
		valid = append(valid, el)
	}
	return valid, repeats
}

// batchElement builds the event of one element with the builder of its
// kind. The error is the builder's, a 400 for a missing or unknown test, or
// a 503 when the test could not be read.
func (s *Server) batchElement(ctx context.Context, ev *batchEvent, tests map[string]*experiment.Test, now time.Time) (element, error) {
	t, ok := tests[ev.TestID]
	if !ok {
		if ev.TestID == "" {
			return element{}, experiment.Invalid("test_id", "is required")
		}
		var err error
		t, err = s.lookup(ctx, ev.TestID)
		if errors.Is(err, experiment.ErrNotFound) {
			return element{}, experiment.Invalid("test_id", "test %s not found", truncateID(ev.TestID))
		}
		if err != nil {
			return element{}, unavailable("reading the test failed; retry", err)
		}
		tests[ev.TestID] = t
	}
	in := eventInput{
		UserID: ev.UserID, VariantID: ev.VariantID, EventID: ev.EventID,
		Attributes: ev.Attributes, Metrics: ev.Metrics, Covariates: ev.Covariates,
	}
	if ev.Timestamp != nil {
		in.Timestamp = &ev.Timestamp.Time
	}
	switch ev.Type {
	case "assignment":
		a, v, err := newAssignment(t, &in, now)
		if err != nil {
			return element{}, err
		}
		data, err := encodeEvent(&a)
		if err != nil {
			return element{}, fmt.Errorf("encoding an assignment event: %w", err)
		}
		return element{subject: eventv1.SubjectAssignment, testID: t.ID, eventID: a.EventID, variantID: v.ID, data: data}, nil
	case "result":
		r, err := newResult(t, &in, now)
		if err != nil {
			return element{}, err
		}
		data, err := encodeEvent(&r)
		if err != nil {
			return element{}, fmt.Errorf("encoding a result event: %w", err)
		}
		return element{subject: eventv1.SubjectResult, testID: t.ID, eventID: r.EventID, variantID: r.VariantID, data: data}, nil
	}
	return element{}, experiment.Invalid("type", `must be "assignment" or "result"`)
}

// publishBatch publishes the batch messages and waits, until ctx is done,
// for their acknowledgements, and sets each element's outcome in results.
func (s *Server) publishBatch(ctx context.Context, msgs []batchMessage, results []batchItem) {
	type pub struct {
		index  int
		future jetstream.PubAckFuture
	}
	pubs := make([]pub, 0, len(msgs))
	for i, m := range msgs {
		f, err := publishAsync(s.async, m.subject, m.id, m.data, s.cfg.PublishTimeout)
		if err != nil {
			for _, el := range m.elements {
				item := &results[el.index]
				item.Status, item.Error = outcomeFailed, "the event bus did not take the event; retry it with this event_id"
			}
			s.metrics.published.WithLabelValues(m.elements[0].subject, "error").Add(float64(len(m.elements)))
			continue
		}
		pubs = append(pubs, pub{index: i, future: f})
	}
	for _, p := range pubs {
		m := msgs[p.index]
		ack, err := awaitAck(ctx, p.future)
		outcome := "ok"
		for _, el := range m.elements {
			item := &results[el.index]
			switch {
			case err == nil:
				item.Status, item.Duplicate = outcomeAccepted, ack.Duplicate
				if ack.Duplicate {
					outcome = "duplicate"
				}
			default:
				item.Status, item.Error = outcomeFailed, "the event bus did not acknowledge the event in time; retry it with this event_id"
				outcome = "error"
			}
		}
		s.metrics.published.WithLabelValues(m.elements[0].subject, outcome).Add(float64(len(m.elements)))
	}
}

// count totals the outcomes and returns the response's status: 202 when
// all are accepted, 207 when some are rejected, 400 when none is valid, 503
// when any failed.
func (r *batchResponse) count() int {
	for _, it := range r.Results {
		switch it.Status {
		case outcomeAccepted:
			r.Accepted++
			if it.Duplicate {
				r.Duplicates++
			}
		case outcomeRejected:
			r.Rejected++
		case outcomeFailed:
			r.Failed++
		}
	}
	switch {
	case r.Failed > 0:
		return http.StatusServiceUnavailable
	case r.Accepted == 0:
		return http.StatusBadRequest
	case r.Rejected > 0:
		return http.StatusMultiStatus
	}
	return http.StatusAccepted
}

// batchMessage is one JetStream message of a batch: up to
// eventv1.MaxBatchEvents events of one kind, one JSON event per line.
type batchMessage struct {
	subject, id string
	data        []byte
	elements    []element
}

// packBatch groups the valid elements, by kind and in their order, into
// batch messages: JetStream's cost is per message, so a batch of 2,000
// events makes a few messages, not 2,000. A message's id is a digest of its
// events' test and event ids: a client that retries the same batch sends
// the same messages, which JetStream recognises as duplicates inside its
// window. Any other repeat of an event_id (a retry after the window, or in
// another batch) is stored and counted once by the analysis (ingest/doc.go).
func packBatch(valid []element) []batchMessage {
	var out []batchMessage
	var keys []byte // the events' ids, hashed into the message id
	for _, kind := range []struct{ single, batch, prefix string }{
		{eventv1.SubjectAssignment, eventv1.SubjectAssignmentBatch, "ab:"},
		{eventv1.SubjectResult, eventv1.SubjectResultBatch, "rb:"},
	} {
		var cur batchMessage
		flush := func() {
			if len(cur.elements) == 0 {
				return
			}
			sum := sha256.Sum256(keys)
			cur.subject = kind.batch
			cur.id = kind.prefix + hex.EncodeToString(sum[:20])
			out = append(out, cur)
			cur = batchMessage{}
		}
		for _, el := range valid {
			if el.subject != kind.single {
				continue
			}
			if len(cur.elements) == eventv1.MaxBatchEvents || len(cur.data)+len(el.data)+1 > eventv1.MaxBatchBytes {
				flush()
			}
			if len(cur.elements) == 0 {
				cur.data = make([]byte, 0, min(eventv1.MaxBatchBytes, len(valid)*(len(el.data)+1)))
				keys = keys[:0]
			} else {
				cur.data = append(cur.data, '\n')
			}
			cur.data = append(cur.data, el.data...)
			cur.elements = append(cur.elements, el)
			keys = append(keys, el.testID...)
			keys = append(keys, 0)
			keys = append(keys, el.eventID...)
			keys = append(keys, '\n')
		}
		flush()
	}
	return out
}

// publishAsync publishes one message to the event stream with its message
// id, waiting at most stall for room in the publisher's window of
// unacknowledged messages.
func publishAsync(pub asyncPublisher, subject, id string, data []byte, stall time.Duration) (jetstream.PubAckFuture, error) {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	return pub.PublishMsgAsync(msg, jetstream.WithExpectStream(eventv1.Stream), jetstream.WithStallWait(stall))
}

// awaitAck waits for one publish's acknowledgement. An ack that has already
// arrived wins over an expired deadline, so an event that was stored is never
// reported as failed because of the timing of this loop.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	default:
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// msgID is the JetStream message id of an event: its kind, test and event
// id. JetStream deduplicates message ids across the whole stream, so the
// same client event id in two tests (one order counting in several
// experiments) must give two ids.
func msgID(subject, testID, eventID string) string {
	kind := "r:"
	if subject == eventv1.SubjectAssignment {
		kind = "a:"
	}
	return kind + testID + ":" + eventID
}

// eventKey identifies an event as JetStream's message id does (msgID),
// without building the string.
type eventKey struct{ subject, testID, eventID string }

// element is one validated batch element, ready to publish.
type element struct {
	index                               int
	subject, testID, eventID, variantID string
	data                                []byte
}

// encodeEvent encodes an eventv1 event for JetStream with
// github.com/goccy/go-json, which writes the same JSON as encoding/json for
// these types (eventv1's tests check it) in less than half the time: the
// encoding is a large part of the batch endpoint's cost.
func encodeEvent(v any) ([]byte, error) {
	return gojson.Marshal(v)
}
