package validate

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newValidator(t testing.TB, cfg Config) *Validator {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ruleOf returns the rule and field of err, or "" for nil.
func ruleOf(t testing.TB, err error) (rule, field string) {
	t.Helper()
	if err == nil {
		return "", ""
	}
	var ve *Violation
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *Violation", err, err)
	}
	return ve.Rule, ve.Field
}

func TestJSON(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	tests := []struct {
		name      string
		body      string
		wantRule  string
		wantField string
	}{
		{"empty object", `{}`, "", ""},
		{"scalar", `"hello"`, "", ""},
		{"numbers and literals", `{"a":-1.5e+3,"b":0,"c":true,"d":false,"e":null,"f":[]}`, "", ""},
		{"honest test", `{"test_name":"O'Brien's checkout; v2 | blue & green","description":"select the drop-down","variants":[{"variant_id":"control","variant_name":"Control"}]}`, "", ""},
		{"sqli in nested name", `{"variants":[{"variant_name":"ok"},{"variant_name":"' OR 1=1--"}]}`, RuleSQLInjection, "variants[1].variant_name"},
		{"xss escaped in JSON", `{"description":"\u003cscript\u003ealert(1)\u003c/script\u003e"}`, RuleXSS, "description"},
		{"command injection", `{"a":{"b":["x","; cat /etc/passwd"]}}`, RuleCommandInjection, "a.b[1]"},
		{"attack in key names the object", `{"meta":{"<script>alert(1)</script>":1}}`, RuleXSS, "meta"},
		{"configuration is exempt", `{"variants":[{"variant_id":"a","configuration":{"html":"<script>x()</script>","sql":"' OR 1=1--","nested":[{"cmd":"; id"}]}}]}`, "", ""},
		{"configuration elsewhere is not exempt", `{"configuration":{"html":"<script>x()</script>"}}`, RuleXSS, "configuration.html"},
		{"null byte in free text is filtered", `{"description":"hello\u0000world"}`, "", ""},
		{"null byte in identifier", `{"user_id":"abc\u0000"}`, RuleNullByte, "user_id"},
		{"null byte in nested id", `{"variants":[{"variant_id":"a\u0000"}]}`, RuleNullByte, "variants[0].variant_id"},
		{"control char in identifier", `{"test_id":"abc\u0007"}`, RuleControlCharacter, "test_id"},
		{"identifier keys match in any case, as encoding/json does", `{"USER_ID":"a\u0007b"}`, RuleControlCharacter, "USER_ID"},
		{"exemption matches in any case", `{"Variants":[{"Configuration":{"html":"<script>x()</script>"}}]}`, "", ""},
		{"C1 control in identifier", `{"id":"abc\u0085"}`, RuleControlCharacter, "id"},
		{"DEL in identifier", `{"id":"abc\u007f"}`, RuleControlCharacter, "id"},
		{"tab in identifier is allowed", `{"id":"a\tb"}`, "", ""},
		{"control char in free text is allowed", `{"description":"bell\u0007"}`, "", ""},
		{"control char in key", `{"a\u0001":1}`, RuleControlCharacter, ""},
		{"invalid UTF-8", "{\"description\":\"\xff\xfe\"}", RuleInvalidUTF8, "description"},
		{"invalid UTF-8 in exempt field", "{\"variants\":[{\"configuration\":{\"x\":\"\xc3\"}}]}", RuleInvalidUTF8, "variants[0].configuration.x"},
		{"lone surrogate", `{"description":"\ud800"}`, RuleInvalidUTF8, "description"},
		{"surrogate pair", `{"description":"\ud83d\ude00"}`, "", ""},
		{"trailing comma", `{"a":1,}`, RuleInvalidJSON, ""},
		{"trailing data", `{"a":1} {}`, RuleInvalidJSON, ""},
		{"unterminated", `{"a":"b`, RuleInvalidJSON, ""},
		{"empty", ``, RuleInvalidJSON, ""},
		{"bad literal", `{"a":tru}`, RuleInvalidJSON, ""},
		{"leading zero", `{"a":01}`, RuleInvalidJSON, ""},
		{"raw control char", "{\"a\":\"\x01\"}", RuleInvalidJSON, ""},
		{"bad escape", `{"a":"\x"}`, RuleInvalidJSON, ""},
		{"missing colon", `{"a" 1}`, RuleInvalidJSON, ""},
		{"mismatched bracket", `{"a":[1}`, RuleInvalidJSON, ""},
		{"too deep", strings.Repeat("[", 33) + strings.Repeat("]", 33), RuleMaxDepth, strings.Repeat("[0]", 32)},
		{"deep enough", strings.Repeat("[", 32) + strings.Repeat("]", 32), "", ""},
		{"too long", `{"description":"` + strings.Repeat("é", 100_001) + `"}`, RuleMaxLength, "description"},
		{"long enough", `{"description":"` + strings.Repeat("é", 100_000) + `"}`, "", ""},
		{"too long in exempt field", `{"variants":[{"configuration":{"x":"` + strings.Repeat("a", 100_001) + `"}}]}`, RuleMaxLength, "variants[0].configuration.x"},
		{"url-encoded attack", `{"q":"%3Cscript%3Ealert(1)%3C%2Fscript%3E"}`, RuleXSS, "q"},
		{"fullwidth attack", `{"q":"＜script＞alert(1)＜/script＞"}`, RuleXSS, "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.JSON([]byte(tt.body))
			rule, field := ruleOf(t, err)
			if rule != tt.wantRule || field != tt.wantField {
				t.Errorf("JSON(%.60q) = %v (rule %q field %q), want rule %q field %q", tt.body, err, rule, field, tt.wantRule, tt.wantField)
			}
			// encoding/json agrees on what is valid JSON.
			if valid := json.Valid([]byte(tt.body)); valid == (rule == RuleInvalidJSON) {
				t.Errorf("json.Valid = %v but rule = %q", valid, rule)
			}
		})
	}
}

func TestJSONMaxElements(t *testing.T) {
	v := newValidator(t, Config{MaxElements: 3})
	if err := v.JSON([]byte(`{"a":[1,2]}`)); err != nil {
		t.Errorf("3 elements: %v", err)
	}
	rule, _ := ruleOf(t, v.JSON([]byte(`{"a":[1,2,3]}`)))
	if rule != RuleMaxElements {
		t.Errorf("4 elements: rule %q, want %q", rule, RuleMaxElements)
	}
}

func TestViolationHidesValue(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	secret := "' OR 'zebra'='zebra'--"
	for _, body := range []string{
		`{"name":"` + secret + `"}`,
		`{"` + secret + `":1}`,
	} {
		err := v.JSON([]byte(body))
		if err == nil {
			t.Fatalf("JSON(%q) = nil, want a violation", body)
		}
		if strings.Contains(err.Error(), "zebra") {
			t.Errorf("JSON(%q) = %q, which contains the value", body, err)
		}
	}
}

func TestSanitize(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	tests := []struct {
		name, body, want string
	}{
		{"nothing to remove", `{"a": "b" }`, `{"a": "b" }`},
		{"free text", `{"description":"a\u0000b\u0000","n":1}`, `{"description":"ab","n":1}`},
		{"keeps other escapes", `{"d":"x\n\u0000\u00e9"}`, `{"d":"x\n\u00e9"}`},
		{"exempt untouched", `{"variants":[{"configuration":{"k":"a\u0000b"}}],"d":"\u0000"}`, `{"variants":[{"configuration":{"k":"a\u0000b"}}],"d":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Sanitize([]byte(tt.body))
			if err != nil {
				t.Fatalf("Sanitize(%q): %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Sanitize(%q) mismatch (-want +got):\n%s", tt.body, diff)
			}
			if err := v.JSON(got); err != nil {
				t.Errorf("sanitized body fails JSON: %v", err)
			}
		})
	}
	t.Run("no copy when clean", func(t *testing.T) {
		body := []byte(`{"a":"b"}`)
		got, _ := v.Sanitize(body)
		if &got[0] != &body[0] {
			t.Error("Sanitize copied a body with nothing to remove")
		}
	})
	t.Run("identifier null is an error", func(t *testing.T) {
		if _, err := v.Sanitize([]byte(`{"id":"\u0000"}`)); err == nil {
			t.Error("Sanitize kept a null byte in an identifier")
		}
	})
}

func TestString(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	tests := []struct {
		field, value string
		wantRule     string
		wantClean    string
	}{
		{"query.q", "rock & roll", "", "rock & roll"},
		{"query.q", "a\x00b", "", "ab"},
		{"query.user_id", "a\x00b", RuleNullByte, ""},
		{"path.test_id", "abc\x1b", RuleControlCharacter, ""},
		{"path.anything", "abc\x1b", RuleControlCharacter, ""},
		{"query.q", "\xff", RuleInvalidUTF8, ""},
		{"query.q", "1' OR '1'='1", RuleSQLInjection, ""},
		{"query.q", "SEL\x00ECT", "", "SELECT"},
		{"variants[0].configuration.x", "<script>", "", "<script>"},
		{"variants[0].configuration", "<script>", "", "<script>"},
		{"variants[0].configurations", "<script>", RuleXSS, ""},
	}
	for _, tt := range tests {
		got, err := v.Clean(tt.field, tt.value)
		rule, field := ruleOf(t, err)
		if rule != tt.wantRule || got != tt.wantClean {
			t.Errorf("Clean(%q, %q) = %q, %v, want %q, rule %q", tt.field, tt.value, got, err, tt.wantClean, tt.wantRule)
		}
		if err != nil && field != tt.field {
			t.Errorf("Clean(%q, %q) field = %q", tt.field, tt.value, field)
		}
	}
}

func TestQueryAndParams(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	q := url.Values{"search": {"a\x00b", "O'Brien"}, "user_id": {"u1"}}
	if err := v.Query(q); err != nil {
		t.Fatalf("Query: %v", err)
	}
	if diff := cmp.Diff([]string{"ab", "O'Brien"}, q["search"]); diff != "" {
		t.Errorf("Query did not clean values (-want +got):\n%s", diff)
	}
	rule, field := ruleOf(t, v.Query(url.Values{"sort": {"name; DROP TABLE users--"}}))
	if rule != RuleSQLInjection || field != "query.sort" {
		t.Errorf("Query(sqli) = %q on %q", rule, field)
	}
	rule, _ = ruleOf(t, v.Query(url.Values{"a\x01": {"x"}}))
	if rule != RuleControlCharacter {
		t.Errorf("Query(control char in name) rule = %q", rule)
	}
	if err := v.Params([]string{"test_id"}, []string{"checkout-v2"}); err != nil {
		t.Errorf("Params: %v", err)
	}
	rule, field = ruleOf(t, v.Params([]string{"test_id"}, []string{"x;cat /etc/passwd"}))
	if rule != RuleCommandInjection || field != "path.test_id" {
		t.Errorf("Params(cmdi) = %q on %q", rule, field)
	}
}

func TestDetectorsSwitch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnableSQLInjection, cfg.EnableXSS, cfg.EnableCommandInjection = false, false, false
	v := newValidator(t, cfg)
	for _, s := range []string{"' OR 1=1--", "<script>alert(1)</script>", "; cat /etc/passwd"} {
		if err := v.String("q", s); err != nil {
			t.Errorf("String(%q) with detectors off = %v", s, err)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"variants[*].configuration", "variants[3].configuration", true},
		{"variants[*].configuration", "variants.configuration", false},
		{"variants[2].configuration", "variants[3].configuration", false},
		{"**.id", "id", true},
		{"**.id", "a[1].b.id", true},
		{"**.id", "a.ids", false},
		{"**.*_id", "variants[0].variant_id", true},
		{"**.*_id", "query.user_id", true},
		{"**.*_id", "user_identity", false},
		{"path.*", "path.test_id", true},
		{"path.*", "path", false},
		{"a.**.b", "a.b", true},
		{"a.**.b", "a.x[1].y.b", true},
		{"a.**.b", "a.x.c", false},
		{"[*]", "[0]", true},
		{"*", "[0]", false},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.match(parseField(tt.path)); got != tt.want {
			t.Errorf("pattern %q match %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"", "a..b", "a[", "a[x]", "a]b", "a[1]b"} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("parsePattern(%q) = nil error, want one", bad)
		}
	}
	if _, err := New(Config{ExemptFields: []string{"a[["}}); err == nil {
		t.Error("New accepted a bad pattern")
	}
}

func TestRenderParseRoundTrip(t *testing.T) {
	for _, f := range []string{"a", "a.b", "a[1]", "a[1][2].b", "variants[0].configuration.x"} {
		if got := renderPath(parseField(f)); got != f {
			t.Errorf("renderPath(parseField(%q)) = %q", f, got)
		}
	}
}

func TestCommandContext(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"; id", true},
		{"$(whoami)", true},
		{"x`id`", true},
		{"cat$IFS/etc/passwd", true},
		{";w'h'o'am'i", true},
		{"line one\nid", true},
		{"a\nls -la", true},
		{"> /etc/cron.d/x", true},
		{"I like cats; dogs are fine too", false},
		{"Can you cat the logs?", false},
		{"Use `cat` instead", false},
		{"Run `ls -la` to see", false},
		{"Tom & Jerry", false},
		{"Name | ID | Email", false},
		{"Build && test && deploy", false},
		{"ftp://files.example.com/a.txt", false},
		{"Type <Enter> to continue", false},
		{"Shift: 1 << 4", false},
		{"Price is $(5) cheaper", false},
	}
	for _, tt := range tests {
		if got := detectCommand(tt.s); got != tt.want {
			t.Errorf("detectCommand(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestJSONHostile feeds bodies built to exhaust the stack or the heap; each
// must fail fast on its limit.
func TestJSONHostile(t *testing.T) {
	v := newValidator(t, DefaultConfig())
	tests := []struct {
		name string
		body string
		want string
	}{
		{"a million brackets", strings.Repeat("[", 1_000_000), RuleMaxDepth},
		{"a million objects", strings.Repeat(`{"a":`, 1_000_000), RuleMaxDepth},
		{"200k elements", "[" + strings.Repeat("1,", 200_000) + "1]", RuleMaxElements},
		{"200k members", "{" + strings.Repeat(`"k":1,`, 200_000) + `"k":1}`, RuleMaxElements},
		{"1M character string", `"` + strings.Repeat("a", 1_000_000) + `"`, RuleMaxLength},
		{"1M digit number", strings.Repeat("1", 1_000_000), RuleMaxLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := ruleOf(t, v.JSON([]byte(tt.body))); got != tt.want {
				t.Errorf("JSON(%.20q...) rule = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}
