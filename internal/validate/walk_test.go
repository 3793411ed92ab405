package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestStepMatchesMatch checks that stepping a pattern's states along a path,
// as the JSON walker does, agrees with pattern.match on random patterns and
// paths.
func TestStepMatchesMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	psegs := []string{"a", "b", "*", "a*", "*b", "a*b", "*a*", "**", "[*]", "[0]", "[1]", "a[0]", "*[*]"}
	keys := []string{"a", "b", "ab", "B", "aXb", "", "ba", "A"}
	for range 20_000 {
		parts := make([]string, 1+r.IntN(5))
		for i := range parts {
			parts[i] = psegs[r.IntN(len(psegs))]
		}
		src := strings.Join(parts, ".")
		p, err := parsePattern(src)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", src, err)
		}
		segs := make([]segment, r.IntN(7))
		for i := range segs {
			if r.IntN(3) == 0 {
				segs[i] = segment{index: r.IntN(3)}
			} else {
				segs[i] = segment{key: keys[r.IntN(len(keys))], index: -1}
			}
		}
		s := p.start()
		for _, seg := range segs {
			s = p.step(s, []byte(strings.ToLower(seg.key)), seg.index)
		}
		if got, want := p.accepts(s), p.match(segs); got != want {
			t.Fatalf("pattern %q on %q: step gives %v, match %v", src, renderPath(segs), got, want)
		}
	}
}

// TestWalkWithoutStepping checks that the walker gives the same results
// with patterns too long to step, when it matches whole paths instead.
func TestWalkWithoutStepping(t *testing.T) {
	long := "**" + strings.Repeat(".a", maxStepLen)
	cfg := DefaultConfig()
	cfg.ExemptFields = []string{"variants[*].configuration", "**.Opaque", "list[1]"}
	cfg.IdentifierFields = []string{"**.id", "**.*_id", "x.*_key"}
	fast := newValidator(t, cfg)
	if !fast.stepping {
		t.Fatal("default patterns are not stepped")
	}
	slow := *fast
	slow.stepping = false
	cfg.IdentifierFields = append(cfg.IdentifierFields, long)
	if v := newValidator(t, cfg); v.stepping {
		t.Fatalf("a pattern of %d segments is stepped", len(long)/2)
	}

	values := []string{"ok", "a\u0000b", "<script>alert(1)</script>", "' OR 1=1--", "\x01", "line\nbreak"}
	templates := []string{
		`%[2]s`, `[%[2]s]`, `{%[1]s:%[2]s}`, `{"x":{%[1]s:%[2]s}}`, `{"a":[{%[1]s:[%[2]s]}]}`,
		`{"variants":[{"configuration":{%[1]s:%[2]s}},{%[1]s:%[2]s}]}`,
		`{"list":[%[2]s,{%[1]s:%[2]s}]}`, `{"y":{"OPAQUE":{%[1]s:%[2]s}}}`, `{%[2]s:1}`,
		`{%[1]s:{"n":1},"z":%[2]s}`,
	}
	keys := []string{`"id"`, `"User_ID"`, `"x_key"`, `"note"`, `"\u0069d"`, `"k\u00e9_id"`, `"a\u0000"`}
	bodies := [][]byte{typicalBody()}
	for _, val := range values {
		vj, _ := json.Marshal(val)
		for _, k := range keys {
			for _, tmpl := range templates {
				bodies = append(bodies, fmt.Appendf(nil, tmpl, k, vj))
			}
		}
	}
	for _, body := range bodies {
		got, gerr := fast.Sanitize(body)
		want, werr := slow.Sanitize(body)
		if !bytes.Equal(got, want) || fmt.Sprint(gerr) != fmt.Sprint(werr) || rule(gerr) != rule(werr) {
			t.Errorf("Sanitize(%s) = %q, %v; without stepping %q, %v", body, got, gerr, want, werr)
		}
	}
}

// TestJSONKeyEscapesInField checks that a violation names a key that was
// sent with escapes by its decoded text.
func TestJSONKeyEscapesInField(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	body := `{"a\u0041b":[{"\u00e9t\u00e9":"<script>alert(1)</script>"}]}`
	r, field := ruleOf(t, v.JSON([]byte(body)))
	if r != RuleXSS || field != "aAb[0].été" {
		t.Errorf("JSON(%s) = %q at %q, want %q at %q", body, r, field, RuleXSS, "aAb[0].été")
	}
}

// TestSanitizeConcurrent checks that walkers shared through the pool do not
// mix up concurrent bodies.
func TestSanitizeConcurrent(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	bodies := []string{
		`{"description":"a\u0000b","user_id":"u"}`,
		`{"variants":[{"configuration":{"k":"\u0000"}}],"n":"\u0000x\u0000"}`,
		`["\u0000","` + strings.Repeat("é", 5000) + `\u0000"]`,
		`{"user_id":"a\u0000b"}`,
	}
	want := make([]string, len(bodies))
	for i, b := range bodies {
		out, err := v.Sanitize([]byte(b))
		want[i] = fmt.Sprintf("%s %v", out, err)
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := range 500 {
				i := (g + n) % len(bodies)
				out, err := v.Sanitize([]byte(bodies[i]))
				if got := fmt.Sprintf("%s %v", out, err); got != want[i] {
					t.Errorf("Sanitize(%.40s) = %.60s, want %.60s", bodies[i], got, want[i])
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
