package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
)

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
	Timestamp *timeValue          `json:"timestamp"`
	// Attributes (assignments) and Covariates (results) are optional.
	Attributes map[string]string   `json:"attributes"`
	Covariates map[string]*float64 `json:"covariates"`
}

// readEvent is one element of a batch as read: its event, or the 4xx
// *httpError that rejects it (invalid JSON for an event, or input
// validation).
type readEvent struct {
	ev  batchEvent
	err *httpError
}

// Reading a batch parses each element once on the hot path. One
// github.com/goccy/go-json decoder reads a JSON array element by element
// (an NDJSON body line by line), and input validation looks at the decoded
// strings: when every string is plain (validate.Validator.Plain) and the
// element's quotes are all accounted for (plainEvent), the validator's walk
// could find nothing and is skipped. Any other element, and every element of
// a body the fast decoder refuses (its elements are then split and each read
// on its own), goes the exact path: the validator walks its raw JSON, and
// encoding/json decodes what go-json refuses. So an error
// reads exactly as elsewhere in the API; FuzzReadBatch checks that both
// paths read every body alike.

// readBatch reads the body's events: a JSON array, or newline-delimited
// JSON (Content-Type application/x-ndjson).
func (s *Server) readBatch(c echo.Context) ([]readEvent, error) {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = ""
	}
	body := http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
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
		return s.readArray(data, true)
	case "application/x-ndjson", "application/jsonl", "application/jsonlines":
		raws, err := s.readLines(body)
		if err != nil {
			return nil, err
		}
		out := make([]readEvent, len(raws))
		for i, raw := range raws {
			if !s.fastElement(raw, &out[i].ev) {
				out[i] = s.exactElement(raw)
			}
		}
		return out, nil
	}
	return nil, newError(http.StatusUnsupportedMediaType, "Content-Type must be application/json (an array) or application/x-ndjson, got %q", ct)
}

// readArray reads a JSON array of events, with the fast decoder when fast
// is set and it can.
func (s *Server) readArray(data []byte, fast bool) ([]readEvent, error) {
	if fast {
		if out, ok := s.decodeArray(data); ok {
			if err := checkCount(len(out)); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	raws := splitArray(data)
	if raws == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&raws); err != nil {
			return nil, jsonError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, newError(http.StatusBadRequest, "request body must hold a single JSON array of events")
		}
	}
	if err := checkCount(len(raws)); err != nil {
		return nil, err
	}
	out := make([]readEvent, len(raws))
	for i, raw := range raws {
		if !fast || !s.fastElement(raw, &out[i].ev) {
			out[i] = s.exactElement(raw)
		}
	}
	return out, nil
}

// checkCount checks the number of events of a batch.
func checkCount(n int) error {
	if n == 0 {
		return newError(http.StatusBadRequest, "the batch holds no events")
	}
	if n > MaxBatchEvents {
		return newError(http.StatusRequestEntityTooLarge, "a batch holds at most %d events", MaxBatchEvents)
	}
	return nil
}

// readLines splits an NDJSON body into its non-blank lines.
func (s *Server) readLines(body io.Reader) ([][]byte, error) {
	var raws [][]byte
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), int(s.cfg.MaxBodyBytes))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		raws = append(raws, bytes.Clone(line))
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
	if err := checkCount(len(raws)); err != nil {
		return nil, err
	}
	return raws, nil
}

// decodeArray is the fast path of a JSON array: one go-json decoder reads
// the elements in turn, and each is checked in place (plainEvent). An
// element that is not plain is read again the exact way, from its bytes.
// It reports false, and the caller reads the body the exact way, on any
// error of the decoder (a panic in it included), on invalid UTF-8, which
// encoding/json would replace, and on more than MaxBatchEvents elements.
func (s *Server) decodeArray(data []byte) (out []readEvent, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	if !utf8.Valid(data) {
		return nil, false
	}
	dec := gojson.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != gojson.Delim('[') {
		return nil, false
	}
	for dec.More() {
		if len(out) == MaxBatchEvents {
			return nil, false
		}
		start := dec.InputOffset()
		out = append(out, readEvent{})
		el := &out[len(out)-1]
		if err := dec.Decode(&el.ev); err != nil {
			return nil, false
		}
		end := dec.InputOffset()
		if start < 0 || end > int64(len(data)) || start >= end {
			return nil, false
		}
		raw := trimElement(data[start:end])
		if !s.plainEvent(raw, &el.ev) {
			*el = s.exactElement(raw)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != gojson.Delim(']') {
		return nil, false
	}
	off := dec.InputOffset()
	if off <= 0 || off > int64(len(data)) || len(bytes.TrimSpace(data[off:])) != 0 {
		return nil, false
	}
	return out, true
}

// trimElement removes the separator and white space that precede an
// element in the span the decoder reports.
func trimElement(b []byte) []byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) > 0 && b[0] == ',' {
		b = bytes.TrimLeft(b[1:], " \t\r\n")
	}
	return bytes.TrimRight(b, " \t\r\n")
}

// fastElement decodes one element with go-json and reports whether it is
// plain, so that its read is done.
func (s *Server) fastElement(raw []byte, ev *batchEvent) bool {
	return fastDecode(raw, ev) && s.plainEvent(raw, ev)
}

// plainEvent reports whether the validator's walk of raw, the JSON that
// decoded into ev, could find nothing and change nothing: the limits cannot
// be reached, every string is plain, and raw holds no string that ev does
// not (counted by quotes: a plain string has none inside it, and every
// object key and string value adds two). A repeated key, or a null or empty
// string, fails the count, and the element is read the exact way.
func (s *Server) plainEvent(raw []byte, ev *batchEvent) bool {
	v := s.validator
	if v == nil {
		return true
	}
	cfg := v.Config()
	if len(raw) > cfg.MaxStringLength || cfg.MaxDepth < 2 {
		return false
	}
	quotes, members := 0, 0
	for _, f := range [...]string{ev.Type, ev.TestID, ev.UserID, ev.VariantID, ev.EventID} {
		if f == "" {
			continue
		}
		if !v.Plain(f) {
			return false
		}
		quotes += 4
		members++
	}
	if ev.Timestamp != nil {
		if !v.Plain(ev.Timestamp.raw) {
			return false
		}
		quotes += 4
		members++
	}
	for _, m := range [...]map[string]*float64{ev.Metrics, ev.Covariates} {
		if m == nil {
			continue
		}
		quotes += 2 + 2*len(m)
		members += 1 + len(m)
		for k := range m {
			if !v.Plain(k) {
				return false
			}
		}
	}
	if ev.Attributes != nil {
		quotes += 2 + 4*len(ev.Attributes)
		members += 1 + len(ev.Attributes)
		for k, val := range ev.Attributes {
			if !v.Plain(k) || !v.Plain(val) {
				return false
			}
		}
	}
	return members <= cfg.MaxElements && bytes.Count(raw, []byte{'"'}) == quotes
}

// exactElement reads one element the exact way: the validator walks it
// (and removes null bytes from free text), then it is decoded.
func (s *Server) exactElement(raw []byte) readEvent {
	if s.validator != nil {
		clean, err := s.validator.Sanitize(raw)
		if err != nil {
			return readEvent{err: s.inputError(err, "")}
		}
		raw = clean
	}
	ev, herr := decodeBatchEvent(raw)
	return readEvent{ev: ev, err: herr}
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

// fastDecode decodes raw into v with github.com/goccy/go-json, rejecting
// unknown fields as encoding/json's DisallowUnknownFields does. It reports
// false on any error, a panic inside the parser included, invalid UTF-8
// (which encoding/json replaces) or trailing data; callers then decode with
// encoding/json, whose errors the API reports. It serves the request types
// of the data plane only (batch events, assign and record requests), for
// which FuzzDecodeBatchEvent and FuzzDecodeEventRequest check that it
// accepts nothing encoding/json refuses and decodes every value alike.
func fastDecode[T batchEvent | assignRequest | recordRequest](raw []byte, v *T) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if !utf8.Valid(raw) {
		return false
	}
	dec := gojson.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false
	}
	off := dec.InputOffset()
	return off > 0 && off <= int64(len(raw)) && len(bytes.TrimSpace(raw[off:])) == 0
}

// timeValue is a batch event's timestamp: a time.Time, decoded by its own
// UnmarshalJSON as encoding/json decodes a *time.Time, and the JSON text it
// came from, which plainEvent checks.
type timeValue struct {
	time.Time
	raw string // the JSON string without its quotes
}

func (t *timeValue) UnmarshalJSON(b []byte) error {
	if err := t.Time.UnmarshalJSON(b); err != nil {
		return err
	}
	if len(b) >= 2 {
		t.raw = string(b[1 : len(b)-1])
	}
	return nil
}
