package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/internal/validate"
)

// FuzzDecodeBatchEvent checks decodeBatchEvent's fast path against
// encoding/json: whatever the fast path accepts, encoding/json accepts too
// (with DisallowUnknownFields, nothing after the value) and decodes to the
// same value. Where the fast path refuses, encoding/json decides, so the
// API's answers are those of encoding/json on every input.
func FuzzDecodeBatchEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"result","test_id":"t","user_id":"u","metrics":{"revenue":1.5,"conv":0}}`,
		`{"type":"assignment","test_id":"t","user_id":"u","variant_id":"b","attributes":{"platform":"ios"}}`,
		`{"type":"result","test_id":"t","user_id":"u","metrics":{"m":null},"covariates":{"m":2},"event_id":"e-1","timestamp":"2026-11-26T12:00:00Z"}`,
		`{"TYPE":"result","Test_ID":"t","user_id":"u\u00e9\ud83d\ude00","metrics":{"m":1e308}}`,
		`{"type":"result","type":"assignment","metrics":{"m":1,"m":2}}`,
		`{"type":"result","extra":1}`,
		`{"type":1}`,
		`{"metrics":{"m":"1"}}`,
		`{"timestamp":"yesterday"}`,
		`{"type":"result"} {"type":"x"}`,
		`{"type":"result"}]`,
		`[1]`,
		`null`,
		`{"user_id":"\xff\xfe"}`,
		`{"metrics":{"m":-0.0e-0}}`,
		`{"metrics":{"m":01}}`,
		`{"attributes":{"a":null}}`,
		`{"metrics":null,"attributes":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast batchEvent
		if !fastDecode(raw, &fast) {
			return
		}
		var std batchEvent
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("the fast path accepted %q, encoding/json refuses it: %v", raw, err)
		}
		if len(bytes.TrimSpace(raw[dec.InputOffset():])) != 0 {
			t.Fatalf("the fast path accepted %q with data after the value", raw)
		}
		if d := cmp.Diff(std, fast, cmp.AllowUnexported(timeValue{})); d != "" {
			t.Fatalf("decoding %q: encoding/json (-) and the fast path (+) differ:\n%s", raw, d)
		}
	})
}

// FuzzSplitArray checks splitArray against encoding/json, as
// FuzzDecodeBatchEvent does for the elements.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		`[{"type":"result"},{"type":"assignment","user_id":"u"}]`,
		`[]`, `[1, "x", null, [2], {"a": {"b": [3]}}]`, `[{"a":1}] `, `[{"a":1}] x`, `[{"a":1},]`, `[{"a":"\xff"}]`,
		`{"a":1}`, `null`, `[{"a":1e999}]`, `["\ud800"]`, `[{"a":01}]`, `[{"a": tru}]`, "[\n{\"a\":\n1}\n]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := splitArray(data)
		if fast == nil {
			return
		}
		var std []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("splitArray accepted %q, encoding/json refuses it: %v", data, err)
		}
		if _, err := dec.Token(); err == nil {
			t.Fatalf("splitArray accepted %q with data after the array", data)
		}
		if d := cmp.Diff(std, fast); d != "" {
			t.Fatalf("splitting %q: encoding/json (-) and splitArray (+) differ:\n%s", data, d)
		}
	})
}

// FuzzReadBatch checks the batch endpoint's fast read (one go-json decode
// of each element, the validator's walk skipped for plain elements) against
// the exact read (the walk of every element, then its decode, as the
// endpoint read before): for every body, both give the same events and the
// same errors, element by element, as a JSON array and as NDJSON lines.
func FuzzReadBatch(f *testing.F) {
	for _, s := range []string{
		`[{"type":"result","test_id":"t","user_id":"u","metrics":{"revenue":1.5,"conv":0},"event_id":"o-1"},{"type":"assignment","test_id":"t","user_id":"u@x.io","attributes":{"country":"DE"}}]`,
		`[{"type":"assignment","test_id":"t","user_id":"u","attributes":{"ua":"Mozilla/5.0 (X11; Linux)"}}]`,
		`[{"type":"assignment","test_id":"t","user_id":"1' OR '1'='1","user_id":"u"}]`,
		`[{"type":"assignment","test_id":"t","user_id":"u","attributes":{"a":"<script>alert(1)</script>","a":"x"}}]`,
		`[{"type":"result","test_id":"t","user_id":"u","metrics":{"m":1},"timestamp":"2026-11-26T12:00:00+01:00"}]`,
		`[{"type":"result","test_id":"t","user_id":"u","metrics":{"m":1},"timestamp":"2026-11-26T12:00:00Z"}]`,
		`[{"type":"result","test_id":"t","user_id":"u\u0000v","metrics":{"m":1}}]`,
		`[{"type":"assignment","test_id":"t","user_id":"u","attributes":{"a":"b\u0000c"}}]`,
		`[{"type":"result","test_id":"t","user_id":"u","variant_id":"","metrics":{"m":null}}]`,
		`[{"type":"result","test_id":"t","user_id":"u","variant_id":null,"metrics":{"m":1}}]`,
		`[{"type":"result","test_id":"t","user_id":"\u0075","metrics":{"m":1}}]`,
		`[{"TYPE":"result","Test_ID":"t","user_id":"u","metrics":{"m":1}}]`,
		`[{"type":"result","test_id":"t; rm -rf /","user_id":"u","metrics":{"m":1}}]`,
		`[{"type":"result","metrics":{"m":"1"}},{"type":"result"}]`,
		`[null, {}, {"type":"x"}]`,
		"[\n {\"type\": \"result\", \"user_id\": \"u\"} ,\n\t{\"type\":\"assignment\"}\n]\n",
		`[{"type":"result","user_id":"\xff"}]`,
		`[{"a":1}]`, `[]`, `[1]`, `{"type":"result"}`, `[{"type":"result"}] x`, `[{"type":"result"},]`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{inputRejections: newInputRejections(prometheus.NewRegistry())}
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	s.validator = v
	type read struct {
		Ev     batchEvent
		Status int
		Body   errorBody
	}
	flatten := func(evs []readEvent, err error) ([]read, string) {
		if err != nil {
			status, body := classify(err)
			return nil, fmt.Sprintf("%d %+v", status, body)
		}
		out := make([]read, len(evs))
		for i, e := range evs {
			out[i].Ev = e.ev
			if e.err != nil {
				out[i].Status, out[i].Body = classify(e.err)
			}
		}
		return out, ""
	}
	opts := cmp.Options{cmp.AllowUnexported(timeValue{}), cmpopts.EquateEmpty()}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, fastErr := flatten(s.readArray(body, true))
		exact, exactErr := flatten(s.readArray(body, false))
		if fastErr != exactErr {
			t.Fatalf("reading %q: the exact read says %s, the fast read %s", body, exactErr, fastErr)
		}
		if d := cmp.Diff(exact, fast, opts); d != "" {
			t.Fatalf("reading %q: the exact read (-) and the fast read (+) differ:\n%s", body, d)
		}
		// The same bytes as one NDJSON line.
		line := bytes.TrimSpace(body)
		if len(line) == 0 || bytes.IndexByte(line, '\n') >= 0 {
			return
		}
		var ev batchEvent
		fastLine := readEvent{ev: ev}
		if !s.fastElement(line, &fastLine.ev) {
			fastLine = s.exactElement(line)
		}
		fl, _ := flatten([]readEvent{fastLine}, nil)
		el, _ := flatten([]readEvent{s.exactElement(line)}, nil)
		if d := cmp.Diff(el, fl, opts); d != "" {
			t.Fatalf("reading the line %q: the exact read (-) and the fast read (+) differ:\n%s", line, d)
		}
	})
}

// FuzzDecodeEventRequest checks fastDecode on the assign and record
// request types as FuzzDecodeBatchEvent does on batch events.
func FuzzDecodeEventRequest(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u1","attributes":{"platform":"ios"}}`,
		`{"user_id":"u1","variant_id":"b","metrics":{"revenue":1.5,"m":null},"event_id":"e-1","covariates":{"revenue":2}}`,
		`{"USER_ID":"u\u00e9","Metrics":{"m":1e308}}`,
		`{"user_id":"u","user_id":"v","attributes":{"a":"1","a":"2"}}`,
		`{"user_id":1}`, `{"attributes":{"a":1}}`, `{"metrics":{"m":"1"}}`, `{"extra":1}`,
		`{"user_id":"u"} {"user_id":"v"}`, `[1]`, `null`, `{"user_id":"\xff"}`, `{"metrics":{"m":01}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(fast, std any, ok bool) {
			if !ok {
				return
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(std); err != nil {
				t.Fatalf("the fast path accepted %q, encoding/json refuses it: %v", raw, err)
			}
			if len(bytes.TrimSpace(raw[dec.InputOffset():])) != 0 {
				t.Fatalf("the fast path accepted %q with data after the value", raw)
			}
			if d := cmp.Diff(std, fast); d != "" {
				t.Fatalf("decoding %q: encoding/json (-) and the fast path (+) differ:\n%s", raw, d)
			}
		}
		var a, a2 assignRequest
		check(&a, &a2, fastDecode(raw, &a))
		var r, r2 recordRequest
		check(&r, &r2, fastDecode(raw, &r))
	})
}
