package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
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
		if d := cmp.Diff(std, fast); d != "" {
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
