package api

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/internal/validate"
)

// TestPlainEvent checks which elements the batch endpoint reads with one
// decode (plainEvent true) and which it walks again: every element of the
// loadgen's and the README's shape is plain; anything the validator could
// flag, clean or count differently is not. FuzzReadBatch checks that both
// reads agree.
func TestPlainEvent(t *testing.T) {
	v, err := validate.New(validate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{validator: v, inputRejections: newInputRejections(prometheus.NewRegistry())}
	for _, c := range []struct {
		name, raw string
		plain     bool
	}{
		{"assignment", `{"type":"assignment","test_id":"t-1","user_id":"user-1@example.com","attributes":{"country":"DE","plan":"pro"}}`, true},
		{"result", `{"type": "result", "test_id": "t-1", "user_id": "u1", "event_id": "order-1", "metrics": {"revenue": 12.5, "conversion": 1}, "covariates": {"revenue": 3}}`, true},
		{"timestamp in UTC", `{"type":"result","test_id":"t","user_id":"u","metrics":{"m":1},"timestamp":"2026-11-26T12:00:00.123Z"}`, true},
		{"null metric", `{"type":"result","test_id":"t","user_id":"u","metrics":{"m":null}}`, true},
		{"timestamp with an offset", `{"type":"result","test_id":"t","user_id":"u","metrics":{"m":1},"timestamp":"2026-11-26T12:00:00+01:00"}`, false},
		{"prose attribute", `{"type":"assignment","test_id":"t","user_id":"u","attributes":{"ua":"Mozilla/5.0 (X11)"}}`, false},
		{"repeated key", `{"type":"assignment","test_id":"t","user_id":"1' OR '1'='1","user_id":"u"}`, false},
		{"repeated map key", `{"type":"assignment","test_id":"t","user_id":"u","attributes":{"a":"<b>","a":"x"}}`, false},
		{"escaped letter", `{"type":"result","test_id":"t","user_id":"\u0075","metrics":{"m":1}}`, true},
		{"escaped quote", `{"type":"result","test_id":"t","user_id":"a\"b","metrics":{"m":1}}`, false},
		{"null byte", `{"type":"result","test_id":"t","user_id":"u","attributes":{"a":"b\u0000c"}}`, false},
		{"empty string", `{"type":"result","test_id":"t","user_id":"u","variant_id":"","metrics":{"m":1}}`, false},
		{"null string", `{"type":"result","test_id":"t","user_id":"u","variant_id":null,"metrics":{"m":1}}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ev batchEvent
			if !fastDecode([]byte(c.raw), &ev) {
				t.Fatalf("fastDecode(%s) failed", c.raw)
			}
			if got := s.plainEvent([]byte(c.raw), &ev); got != c.plain {
				t.Errorf("plainEvent(%s) = %v, want %v", c.raw, got, c.plain)
			}
		})
	}
	// A whole array of plain elements is read in one pass.
	body := `[{"type":"assignment","test_id":"t","user_id":"u1"}, {"type":"result","test_id":"t","user_id":"u1","metrics":{"m":2}}]`
	out, ok := s.decodeArray([]byte(body))
	if !ok || len(out) != 2 || out[0].err != nil || out[1].ev.Metrics["m"] == nil || *out[1].ev.Metrics["m"] != 2 {
		t.Fatalf("decodeArray(%s) = %+v, %v; want two events", body, out, ok)
	}
}
