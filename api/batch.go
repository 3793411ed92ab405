package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
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

// batchEvent is one element of a batch. Type "assignment" records that the
// user was exposed to the test: Abacus computes the variant (a variant_id
// sent along must agree). Type "result" records metric values.
type batchEvent struct {
	Type      string              `json:"type"`
	TestID    string              `json:"test_id"`
	UserID    string              `json:"user_id"`
	VariantID string              `json:"variant_id"`
	Metrics   map[string]*float64 `json:"metrics"`
	EventID   string              `json:"event_id"`
	Timestamp *time.Time          `json:"timestamp"`
	// Attributes (assignments) and Covariates (results) are optional.
	Attributes map[string]string   `json:"attributes"`
	Covariates map[string]*float64 `json:"covariates"`
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

// clock skew accepted for client timestamps.
const (
	maxFutureSkew = 5 * time.Minute
	maxEventAge   = 30 * 24 * time.Hour
)

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
	raws, err := s.readBatch(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := s.now().UTC()
	resp := batchResponse{Results: make([]batchItem, len(raws))}
	type pub struct {
		index  int
		future jetstream.PubAckFuture
	}
	tests := map[string]*experiment.Test{}
	valid := make([]element, 0, len(raws))
	seen := make(map[eventKey]int, len(raws))
	var repeats [][2]int // index of a repeated event, index of its first occurrence
	for i, raw := range raws {
		item := &resp.Results[i]
		item.Index = i
		if s.validator != nil {
			// Input validation, event by event (validateBody skips
			// batches so that one bad event is rejected alone).
			clean, err := s.validator.Sanitize(raw)
			if err != nil {
				herr := s.inputError(err, "")
				item.Status, item.Error, item.Field, item.Rule = outcomeRejected, herr.body.Error, herr.body.Field, herr.body.Rule
				continue
			}
			raw = clean
		}
		el, herr := s.batchElement(ctx, raw, tests, now)
		if herr != nil {
			item.Status, item.Error, item.Field = outcomeRejected, herr.body.Error, herr.body.Field
			if herr.status >= 500 {
				item.Status = outcomeFailed
			}
			continue
		}
		el.index = i
		item.EventID = el.eventID
		if el.subject == eventv1.SubjectAssignment {
			item.VariantID = el.variantID
		}
		// An event repeated in the same batch is published once, and the
		// repeat answers as its first occurrence did, marked duplicate.
		key := eventKey{el.subject, el.testID, el.eventID}
		if first, ok := seen[key]; ok {
			repeats = append(repeats, [2]int{i, first})
			continue
		}
		seen[key] = i
		valid = append(valid, el)
	}

	// The publish timeout starts after validation, which may have read tests.
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	msgs := packBatch(valid)
	pubs := make([]pub, 0, len(msgs))
	for i, m := range msgs {
		f, err := s.async.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data}, jetstream.WithMsgID(m.id),
			jetstream.WithExpectStream(eventv1.Stream), jetstream.WithStallWait(s.cfg.PublishTimeout))
		if err != nil {
			for _, el := range m.elements {
				item := &resp.Results[el.index]
				item.Status, item.Error = outcomeFailed, "the event bus did not take the event; retry it with this event_id"
			}
			s.metrics.published.WithLabelValues(m.elements[0].subject, "error").Add(float64(len(m.elements)))
			continue
		}
		pubs = append(pubs, pub{index: i, future: f})
	}
	for _, p := range pubs {
		m := msgs[p.index]
		ack, err := awaitAck(pctx, p.future)
		outcome := "ok"
		for _, el := range m.elements {
			item := &resp.Results[el.index]
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
	for _, r := range repeats {
		item, first := &resp.Results[r[0]], resp.Results[r[1]]
		item.Status, item.Error = first.Status, first.Error
		item.Duplicate = first.Status == outcomeAccepted
	}
	for _, it := range resp.Results {
		switch it.Status {
		case outcomeAccepted:
			resp.Accepted++
			if it.Duplicate {
				resp.Duplicates++
			}
		case outcomeRejected:
			resp.Rejected++
		case outcomeFailed:
			resp.Failed++
		}
	}
	code := http.StatusAccepted
	switch {
	case resp.Failed > 0:
		code = http.StatusServiceUnavailable
	case resp.Accepted == 0:
		code = http.StatusBadRequest
	case resp.Rejected > 0:
		code = http.StatusMultiStatus
	}
	// Encoded with go-json as the events are: a response names every
	// element, and encoding/json would spend as long on it as on reading
	// the request.
	out, err := gojson.Marshal(resp)
	if err != nil {
		return err
	}
	return c.JSONBlob(code, out)
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

// readBatch splits the body into raw JSON objects.
func (s *Server) readBatch(c echo.Context) ([]json.RawMessage, error) {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = ""
	}
	body := http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
	var raws []json.RawMessage
	switch mt {
	case echo.MIMEApplicationJSON:
		data, err := io.ReadAll(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, newError(http.StatusBadRequest, "reading the request body: %v", err)
		}
		if raws = splitArray(data); raws != nil {
			break
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&raws); err != nil {
			return nil, jsonError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, newError(http.StatusBadRequest, "request body must hold a single JSON array of events")
		}
	case "application/x-ndjson", "application/jsonl", "application/jsonlines":
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), int(s.cfg.MaxBodyBytes))
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			raws = append(raws, json.RawMessage(bytes.Clone(line)))
			if len(raws) > MaxBatchEvents {
				break
			}
		}
		if err := sc.Err(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, newError(http.StatusBadRequest, "reading NDJSON body: %v", err)
		}
	default:
		return nil, newError(http.StatusUnsupportedMediaType, "Content-Type must be application/json (an array) or application/x-ndjson, got %q", ct)
	}
	if len(raws) == 0 {
		return nil, newError(http.StatusBadRequest, "the batch holds no events")
	}
	if len(raws) > MaxBatchEvents {
		return nil, newError(http.StatusRequestEntityTooLarge, "a batch holds at most %d events", MaxBatchEvents)
	}
	return raws, nil
}

// splitArray is readBatch's fast path for a JSON array: the raw elements,
// split by github.com/goccy/go-json, or nil on any error (a panic in the
// parser included), when encoding/json splits the body again and says
// what is wrong. FuzzSplitArray checks that it never accepts a body that
// encoding/json refuses nor splits one differently.
func splitArray(data []byte) (raws []json.RawMessage) {
	defer func() {
		if recover() != nil {
			raws = nil
		}
	}()
	if err := gojson.Unmarshal(data, &raws); err != nil {
		return nil
	}
	return raws
}

// batchElement validates one element and encodes its event. It returns a
// 4xx *httpError for an invalid element and a 5xx one when the test could
// not be read.
func (s *Server) batchElement(ctx context.Context, raw json.RawMessage, tests map[string]*experiment.Test, now time.Time) (element, *httpError) {
	ev, herr := decodeBatchEvent(raw)
	if herr != nil {
		return element{}, herr
	}
	invalid := func(field, format string, args ...any) *httpError {
		e := newError(http.StatusBadRequest, format, args...)
		e.body.Field = field
		return e
	}
	t, ok := tests[ev.TestID]
	if !ok {
		if ev.TestID == "" {
			return element{}, invalid("test_id", "test_id is required")
		}
		var err error
		t, err = s.lookup(ctx, ev.TestID)
		if errors.Is(err, experiment.ErrNotFound) {
			return element{}, invalid("test_id", "test %s not found", truncateID(ev.TestID))
		}
		if err != nil {
			return element{}, &httpError{status: http.StatusServiceUnavailable, body: errorBody{Error: "reading the test failed; retry"}}
		}
		tests[ev.TestID] = t
	}
	if err := experiment.ValidateUserID("user_id", ev.UserID); err != nil {
		return element{}, invalid("user_id", "%v", err)
	}
	if t.Status != experiment.StatusRunning {
		return element{}, newError(http.StatusConflict, "test %s is %s: events are accepted only while it is running", t.ID, t.Status)
	}
	ts := now
	if ev.Timestamp != nil {
		ts = ev.Timestamp.UTC()
		if ts.After(now.Add(maxFutureSkew)) || ts.Before(now.Add(-maxEventAge)) {
			return element{}, invalid("timestamp", "timestamp must be within the last 30 days and at most 5 minutes ahead of the server clock")
		}
	}
	if ev.EventID != "" && !eventIDPattern.MatchString(ev.EventID) {
		return element{}, invalid("event_id", "event_id must be 1-64 characters of letters, digits and _ . : -")
	}
	switch ev.Type {
	case "assignment":
		v := experiment.Assign(t, ev.UserID)
		if ev.VariantID != "" && ev.VariantID != v.ID {
			return element{}, invalid("variant_id", "user %s is assigned to variant %s, not %s", truncateID(ev.UserID), v.ID, truncateID(ev.VariantID))
		}
		if ev.Metrics != nil {
			return element{}, invalid("metrics", "an assignment event carries no metrics")
		}
		if ev.Covariates != nil {
			return element{}, invalid("covariates", "an assignment event carries no covariates")
		}
		if err := experiment.ValidateAttributes("attributes", ev.Attributes); err != nil {
			var ve *experiment.ValidationError
			errors.As(err, &ve)
			return element{}, invalid(ve.Field, "%v", err)
		}
		a := eventv1.Assignment{EventID: ev.EventID, TestID: t.ID, UserID: ev.UserID, VariantID: v.ID, Timestamp: ts, Attributes: ev.Attributes}
		if a.EventID == "" {
			a.EventID = uuid.NewSHA1(assignmentNamespace, []byte(t.ID+"\x00"+ev.UserID)).String()
		}
		data, err := encodeEvent(&a)
		if err != nil {
			return element{}, newError(http.StatusInternalServerError, "encoding event")
		}
		return element{subject: eventv1.SubjectAssignment, testID: t.ID, eventID: a.EventID, variantID: v.ID, data: data}, nil
	case "result":
		variant, err := resultVariant(t, ev.UserID, ev.VariantID)
		if err != nil {
			return element{}, invalid("variant_id", "%v", err)
		}
		ev.VariantID = variant
		metrics, herr := checkMetrics(ev.Metrics)
		if herr != nil {
			return element{}, herr
		}
		if ev.Attributes != nil {
			return element{}, invalid("attributes", "attributes belong to assignment events")
		}
		covariates, herr := checkCovariates(ev.Covariates, metrics)
		if herr != nil {
			return element{}, herr
		}
		r := eventv1.Result{EventID: ev.EventID, TestID: t.ID, UserID: ev.UserID, VariantID: ev.VariantID, Metrics: metrics, Timestamp: ts, Covariates: covariates}
		if r.EventID == "" {
			r.EventID = uuid.Must(uuid.NewV7()).String()
		}
		data, err := encodeEvent(&r)
		if err != nil {
			return element{}, newError(http.StatusInternalServerError, "encoding event")
		}
		return element{subject: eventv1.SubjectResult, testID: t.ID, eventID: r.EventID, variantID: r.VariantID, data: data}, nil
	}
	return element{}, invalid("type", `type must be "assignment" or "result"`)
}

// decodeBatchEvent decodes one batch element, rejecting unknown fields.
//
// The fast path is github.com/goccy/go-json, about three times faster than
// encoding/json on these elements; any element it refuses is decoded again
// with encoding/json, so that an error reads (and names its field) exactly
// as elsewhere in the API. FuzzDecodeBatchEvent checks that the fast path
// never accepts what encoding/json refuses, nor decodes a value differently.
func decodeBatchEvent(raw []byte) (ev batchEvent, herr *httpError) {
	if fastDecode(raw, &ev) {
		return ev, nil
	}
	ev = batchEvent{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		if errors.As(jsonError(err), &herr) {
			return ev, herr
		}
		return ev, newError(http.StatusBadRequest, "invalid event: %v", err)
	}
	return ev, nil
}

// fastDecode is decodeBatchEvent's fast path. It reports false on any
// error, a panic inside the parser included, or trailing data.
func fastDecode(raw []byte, ev *batchEvent) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if !utf8.Valid(raw) {
		return false // encoding/json replaces invalid bytes; leave that to it
	}
	dec := gojson.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		return false
	}
	off := dec.InputOffset()
	return off > 0 && off <= int64(len(raw)) && len(bytes.TrimSpace(raw[off:])) == 0
}

// encodeEvent encodes an eventv1 event for JetStream with
// github.com/goccy/go-json, which writes the same JSON as encoding/json for
// these types (eventv1's tests check it) in less than half the time: the
// encoding is a large part of the batch endpoint's cost.
func encodeEvent(v any) ([]byte, error) {
	return gojson.Marshal(v)
}

// resultVariant returns the variant a user's result counts toward: the
// variant the user is assigned to. A result naming another variant is
// rejected, so that a user never counts in two arms; an omitted variant_id
// is filled in.
func resultVariant(t *experiment.Test, userID, variantID string) (string, error) {
	assigned := experiment.Assign(t, userID)
	switch {
	case variantID == "":
		return assigned.ID, nil
	case variantID == assigned.ID:
		return variantID, nil
	}
	if _, ok := t.Variant(variantID); !ok {
		return "", experiment.Invalid("variant_id", "%s is not a variant of test %s", truncateID(variantID), t.ID)
	}
	return "", experiment.Invalid("variant_id", "user %s is assigned to variant %s, not %s", truncateID(userID), assigned.ID, truncateID(variantID))
}

// checkMetrics validates a metrics object: 1 to MaxMetrics well-formed
// names with finite, non-null values.
func checkMetrics(in map[string]*float64) (map[string]float64, *httpError) {
	invalid := func(field, format string, args ...any) *httpError {
		e := newError(http.StatusBadRequest, format, args...)
		e.body.Field = field
		return e
	}
	if len(in) == 0 {
		return nil, invalid("metrics", "metrics: needs at least one metric value")
	}
	if len(in) > eventv1.MaxMetrics {
		return nil, invalid("metrics", "metrics: has more than %d metrics", eventv1.MaxMetrics)
	}
	out := make(map[string]float64, len(in))
	for name, v := range in {
		if !experiment.ValidID(name) {
			return nil, invalid("metrics", "metrics: metric name %.40q must be 1-%d characters of letters, digits and _ . : @ = + -", name, experiment.MaxIDLength)
		}
		if v == nil {
			return nil, invalid("metrics."+name, "metrics.%s: must be a number, not null", name)
		}
		out[name] = *v
	}
	return out, nil
}

func truncateID(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
