package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// typicalBody is a test definition of about 1 KB, the size of a typical
// create request: names, prose with punctuation, two variants with
// configuration.
func typicalBody() []byte {
	return []byte(`{
  "test_id": "checkout-button-2024-q3",
  "test_name": "Checkout button: green vs. blue (O'Brien's proposal)",
  "test_type": "workflow",
  "description": "Does a green 'Buy now' button raise conversion? Hypothesis: +3% (p < 0.05). Select the variant with the higher rate; drop the other after 2 weeks. See https://wiki.example.com/exp?id=42&tab=notes for details.",
  "primary_metric": "conversion_rate",
  "control_variant_id": "control",
  "min_sample_size": 1000,
  "confidence_level": 0.95,
  "metrics": [
    {"name": "conversion_rate", "type": "binary", "direction": "increase", "role": "primary"},
    {"name": "revenue_per_user", "type": "continuous", "direction": "increase", "role": "secondary"}
  ],
  "variants": [
    {"variant_id": "control", "variant_name": "Blue button", "traffic_percentage": 50,
     "configuration": {"color": "#0055ff", "label": "Buy now", "html": "<button class=\"buy\">Buy now</button>"}},
    {"variant_id": "treatment", "variant_name": "Green button — bigger", "traffic_percentage": 50,
     "configuration": {"color": "#00aa44", "label": "Buy now!", "size": "large", "tracking": {"event": "click", "ids": [1, 2, 3]}}}
  ]
}`)
}

// largeBody returns a JSON array of typical bodies of about size bytes.
func largeBody(size int) []byte {
	one := typicalBody()
	var b bytes.Buffer
	b.WriteString(`{"tests":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(one)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func BenchmarkJSON1KB(b *testing.B) {
	v := newValidator(b, DefaultConfig())
	benchBody(b, typicalBody(), v.JSON)
}

// benchBody times check on body, which must pass it, reporting bytes/s and
// allocations.
func benchBody(b *testing.B, body []byte, check func([]byte) error) {
	b.Helper()
	if err := check(body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := check(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONLarge shows the cost is linear in the body size. The element
// limit is raised so that a 10 MB body of test definitions passes.
func BenchmarkJSONLarge(b *testing.B) {
	cfg := DefaultConfig()
	cfg.MaxElements = 10_000_000
	v := newValidator(b, cfg)
	for _, size := range []int{1 << 20, 10 << 20} {
		body := largeBody(size)
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) { benchBody(b, body, v.JSON) })
	}
}

// BenchmarkDecodeOnly is the floor: encoding/json's own streaming tokenizer
// on the same body, with no checks at all.
func BenchmarkDecodeOnly1KB(b *testing.B) {
	body := typicalBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			if _, err := dec.Token(); err != nil {
				break
			}
		}
	}
}

func BenchmarkString(b *testing.B) {
	v := newValidator(b, DefaultConfig())
	for _, s := range []string{
		"checkout-button-2024",
		"Checkout button: green vs. blue (O'Brien's proposal)",
		"%27%20OR%20%271%27%3D%271",
	} {
		b.Run(fmt.Sprintf("%.12s", s), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = v.String("description", s)
			}
		})
	}
}

// BenchmarkJSONLongStrings is the expensive shape for detection: 10 MB in
// strings of 100,000 characters (the length limit) of prose with the
// characters that make every detector and decoder run.
func BenchmarkJSONLongStrings(b *testing.B) {
	v := newValidator(b, DefaultConfig())
	unit := "Rock & roll; 50% off | see https://example.com/?a=1&b=2 — O'Brien's café <3 "
	s := strings.Repeat(unit, 100_000/len([]rune(unit)))
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := 0; buf.Len() < 10<<20; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('"')
		buf.WriteString(s)
		buf.WriteByte('"')
	}
	buf.WriteByte(']')
	benchBody(b, buf.Bytes(), v.JSON)
}

// BenchmarkSanitizeBatchEvent is the validation of one element of a POST
// /events batch, as the batch endpoint runs it for every event.
func BenchmarkSanitizeBatchEvent(b *testing.B) {
	v := newValidator(b, DefaultConfig())
	body := []byte(`{"type":"result","test_id":"8603be98-9e63-4ac7-b672-b62be2a9799d","user_id":"user-123456","variant_id":"treatment","metrics":{"conversion":1,"revenue":10.53125}}`)
	benchBody(b, body, func(body []byte) error {
		_, err := v.Sanitize(body)
		return err
	})
}
