package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func rule(err error) string {
	var ve *Violation
	if errors.As(err, &ve) {
		return ve.Rule
	}
	if err != nil {
		return "not a *Violation: " + err.Error()
	}
	return ""
}

// FuzzJSON checks JSON and Sanitize against encoding/json as an oracle for
// syntax, and that sanitizing is stable.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":"c"}],"d":null}`))
	f.Add(typicalBody())
	f.Add([]byte(`{"description":"x\u0000y","user_id":"u"}`))
	f.Add([]byte(`{"variants":[{"configuration":{"k":"\u0000<script>"}}]}`))
	f.Add([]byte(`"\ud83d\ude00"`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte(`{"q":"%27%20OR%201%3D1--"}`))
	f.Add([]byte(`-0.5e-7`))
	v, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := v.JSON(body)
		r := rule(err)
		if strings.HasPrefix(r, "not a") {
			t.Fatal(r)
		}
		valid := json.Valid(body)
		if r == RuleInvalidJSON && valid {
			t.Fatalf("JSON(%q) = %v, but encoding/json finds it valid", body, err)
		}
		if !valid && err == nil {
			t.Fatalf("JSON(%q) = nil, but encoding/json finds it invalid", body)
		}
		if r2 := rule(v.JSON(body)); r2 != r {
			t.Fatalf("JSON(%q) not deterministic: %q then %q", body, r, r2)
		}
		clean, serr := v.Sanitize(body)
		if rule(serr) != r {
			t.Fatalf("Sanitize(%q) rule %q, JSON rule %q", body, rule(serr), r)
		}
		if serr != nil {
			return
		}
		if len(clean) > len(body) {
			t.Fatalf("Sanitize grew the body: %q -> %q", body, clean)
		}
		if !json.Valid(clean) {
			t.Fatalf("Sanitize(%q) = %q, not valid JSON", body, clean)
		}
		again, err := v.Sanitize(clean)
		if err != nil {
			t.Fatalf("Sanitize(Sanitize(%q)) = %v", body, err)
		}
		if !bytes.Equal(again, clean) {
			t.Fatalf("Sanitize not idempotent: %q -> %q -> %q", body, clean, again)
		}
	})
}

// FuzzString checks that String is deterministic, that Clean is idempotent,
// and that a value gets the same verdict as a query value and inside a JSON
// body.
func FuzzString(f *testing.F) {
	for _, s := range []string{
		"O'Brien", "' OR 1=1--", "<script>alert(1)</script>", "; cat /etc/passwd",
		"a\x00b", "\xff", "％３Ｃscript％３Ｅ", "&lt;img src=x onerror=alert(1)&gt;",
		"c'a't${IFS}/etc/passwd", "rock & roll | pop; jazz",
	} {
		f.Add("description", s)
		f.Add("user_id", s)
	}
	v, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, field, s string) {
		clean, err := v.Clean(field, s)
		r := rule(err)
		if strings.HasPrefix(r, "not a") {
			t.Fatal(r)
		}
		if r2 := rule(v.String(field, s)); r2 != r {
			t.Fatalf("String(%q, %q) = %q, Clean gave %q", field, s, r2, r)
		}
		if !utf8.ValidString(s) {
			if r != RuleInvalidUTF8 {
				t.Fatalf("Clean(%q, %q) rule %q, want %q", field, s, r, RuleInvalidUTF8)
			}
			return
		}
		if err != nil {
			if ve := err.(*Violation); ve.Field != field {
				t.Fatalf("Clean(%q, %q) Field = %q", field, s, ve.Field)
			}
			return
		}
		again, err := v.Clean(field, clean)
		if err != nil || again != clean {
			t.Fatalf("Clean not idempotent: %q -> %q -> %q, %v", s, clean, again, err)
		}
		// The same value as a free-text JSON member gets the same verdict.
		body, _ := json.Marshal(map[string]string{"description": s})
		want := rule(v.String("description", s))
		if got := rule(v.JSON(body)); got != want {
			t.Fatalf("JSON(%s) rule %q, String rule %q", body, got, want)
		}
	})
}
