// Package validate checks untrusted request input (JSON bodies, query
// parameters and path parameters) before a handler sees it. It rejects
// malformed and oversized input (invalid JSON, invalid UTF-8, over-long
// strings, too deep or too large documents), control characters in
// identifiers, and values that look like SQL injection, cross-site scripting
// or shell command injection. It is the Go counterpart of the seed's
// input_validator (validate_string and validate_dict).
//
// Two kinds of string are told apart by their JSON path. Identifiers (by
// default "id", any key ending in "_id" at any depth, and every path
// parameter; see Config.IdentifierFields), object keys and query parameter
// names must be free of control characters and null bytes. Everything else is free text: tabs, newlines and any
// printable Unicode pass, and null bytes are removed (Sanitize returns the
// cleaned body) rather than rejected, as the seed did.
//
// Subtrees named by Config.ExemptFields (by default each variant's
// "configuration", an opaque client payload) skip injection detection and
// are passed through byte for byte, but still get the UTF-8, length, depth
// and element limits.
//
// Detection favours never rejecting an honest user: SQL injection and XSS
// come from libinjection (a tokenizer-based detector, not keyword matching),
// applied to the value as sent and to its URL-decoded, HTML-entity-decoded and
// NFKC-normalised forms; command injection needs shell syntax in context (a
// separator or substitution followed by a known command and shell-like
// arguments), so prose with semicolons, pipes or the word "cat" passes. The
// measured rates on the corpora in testdata are printed by TestCorpus.
//
// A Violation never carries the offending value, so it is safe to return to
// clients and to log.
package validate

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// The rules a Violation can name.
const (
	RuleSQLInjection     = "sql_injection"
	RuleXSS              = "xss"
	RuleCommandInjection = "command_injection"
	RuleMaxLength        = "max_length"
	RuleMaxDepth         = "max_depth"
	RuleMaxElements      = "max_elements"
	RuleInvalidUTF8      = "invalid_utf8"
	RuleControlCharacter = "control_character"
	RuleNullByte         = "null_byte"
	RuleInvalidJSON      = "invalid_json"
)

// Violation reports one rejected input. Field is the JSON path of the value
// ("variants[1].variant_name"), "query.NAME" or "path.NAME" for parameters,
// or empty for the body as a whole. Message never contains the offending
// value.
type Violation struct {
	Field   string
	Rule    string
	Message string
}

func (e *Violation) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func violation(field, rule, format string, args ...any) *Violation {
	return &Violation{Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Config configures a Validator. Start from DefaultConfig: the zero value
// turns every detector off.
type Config struct {
	// MaxStringLength is the longest string value, object key or number
	// literal, in Unicode code points. Zero means 100,000.
	MaxStringLength int
	// MaxDepth is the deepest nesting of objects and arrays. Zero means 32.
	MaxDepth int
	// MaxElements is the total number of array items and object members in
	// one document. Zero means 100,000.
	MaxElements int

	EnableSQLInjection     bool
	EnableXSS              bool
	EnableCommandInjection bool

	// ExemptFields are path patterns whose subtrees skip injection detection,
	// identifier checks and null-byte filtering. A pattern is a path whose segments are joined
	// by "." with array indexes in brackets, where
	//
	//	name     matches that object key exactly
	//	*        in a key matches any run of characters ("*_id", "*")
	//	[*]      matches any array index, [3] only index 3
	//	**       matches any number of segments, including none
	//
	// A pattern matches a value's full path, so "a.b" matches the path "a.b"
	// but not "x.a.b"; for ExemptFields it also covers everything under a
	// match. Nil means DefaultExemptFields; an empty non-nil slice exempts
	// nothing.
	ExemptFields []string
	// IdentifierFields are path patterns (same syntax, full match only) of
	// the strings that are identifiers. Nil means DefaultIdentifierFields.
	IdentifierFields []string
}

var (
	// DefaultExemptFields exempts each variant's configuration and flag
	// value, opaque payloads for the client. It matches "variants" at the top of the
	// body, as in a test definition; "**.variants[*].configuration" would
	// match it at any depth.
	DefaultExemptFields = []string{"variants[*].configuration", "variants[*].value"}
	// DefaultIdentifierFields treats "id", every key ending in "_id" and
	// every path parameter as an identifier. Names ("test_name") are free
	// text: they are shown to people and may hold any script.
	DefaultIdentifierFields = []string{"**.id", "**.*_id", "path.*"}
)

// DefaultConfig returns the configuration with every detector on and the
// default limits.
func DefaultConfig() Config {
	c := Config{EnableSQLInjection: true, EnableXSS: true, EnableCommandInjection: true}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.MaxStringLength == 0 {
		c.MaxStringLength = 100_000
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = 32
	}
	if c.MaxElements == 0 {
		c.MaxElements = 100_000
	}
	if c.ExemptFields == nil {
		c.ExemptFields = DefaultExemptFields
	}
	if c.IdentifierFields == nil {
		c.IdentifierFields = DefaultIdentifierFields
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxStringLength < 0 {
		errs = append(errs, fmt.Errorf("MaxStringLength %d is negative", c.MaxStringLength))
	}
	if c.MaxDepth < 0 {
		errs = append(errs, fmt.Errorf("MaxDepth %d is negative", c.MaxDepth))
	}
	if c.MaxElements < 0 {
		errs = append(errs, fmt.Errorf("MaxElements %d is negative", c.MaxElements))
	}
	for _, p := range c.ExemptFields {
		if _, err := parsePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("ExemptFields: %w", err))
		}
	}
	for _, p := range c.IdentifierFields {
		if _, err := parsePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("IdentifierFields: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Validator checks input against a Config. It is safe for concurrent use.
type Validator struct {
	cfg        Config
	exempt     []pattern // matches the root of an exempt subtree
	exemptTree []pattern // matches anything in an exempt subtree
	identifier []pattern

	// stepping is set when every pattern is short enough for step; start
	// then holds the states of the empty path, identifier patterns first,
	// then exempt ones.
	stepping bool
	start    []uint64
}

// New returns a Validator for cfg, filling in zero limits and nil pattern
// lists with the defaults.
func New(cfg Config) (*Validator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate config: %w", err)
	}
	v := &Validator{cfg: cfg}
	for _, p := range cfg.ExemptFields {
		pp, _ := parsePattern(p)
		v.exempt = append(v.exempt, pp)
		// A path is in an exempt subtree when "PATTERN.**" matches it.
		v.exemptTree = append(v.exemptTree, append(pp[:len(pp):len(pp)], pseg{kind: pAny}))
	}
	for _, p := range cfg.IdentifierFields {
		pp, _ := parsePattern(p)
		v.identifier = append(v.identifier, pp)
	}
	v.stepping = true
	for _, p := range append(slices.Clip(v.identifier), v.exempt...) {
		v.stepping = v.stepping && len(p) <= maxStepLen
		v.start = append(v.start, p.start())
	}
	return v, nil
}

// Config returns the configuration in force, defaults filled in.
func (v *Validator) Config() Config { return v.cfg }

// String validates one value s named field (a JSON path such as
// "variants[0].variant_name", or "query.user_id"). A null byte is an error in
// an identifier; in free text it is not, because Clean removes it, and the
// checks run on the value without it.
func (v *Validator) String(field, s string) error {
	_, err := v.Clean(field, s)
	return err
}

// Clean validates s like String and returns it with null bytes removed when
// field is free text (s itself when there are none).
func (v *Validator) Clean(field, s string) (string, error) {
	segs := parseField(field)
	exempt := v.isExempt(segs)
	return v.checkString(field, s, exempt, !exempt && v.isIdentifier(segs))
}

// Query validates every query parameter, with fields named "query.NAME",
// in name order so that the first violation reported is deterministic.
// Names are checked as identifiers. It removes null bytes from free-text
// values in place, so q holds the cleaned values afterwards.
func (v *Validator) Query(q url.Values) error {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		vals := q[name]
		field := "query." + name
		if _, err := v.checkString("query", name, false, true); err != nil {
			var ve *Violation
			if errors.As(err, &ve) {
				ve.Message = "parameter name: " + ve.Message
			}
			return err
		}
		segs := []segment{{key: "query", index: -1}, {key: name, index: -1}}
		exempt := v.isExempt(segs)
		ident := !exempt && v.isIdentifier(segs)
		for i, s := range vals {
			c, err := v.checkString(field, s, exempt, ident)
			if err != nil {
				return err
			}
			vals[i] = c
		}
	}
	return nil
}

// Params validates path parameters, given as the parallel name and value
// slices Echo's Context.ParamNames and ParamValues return, with fields named
// "path.NAME". By default every path parameter is an identifier.
func (v *Validator) Params(names, values []string) error {
	for i, name := range names {
		if i >= len(values) {
			break
		}
		segs := []segment{{key: "path", index: -1}, {key: name, index: -1}}
		exempt := v.isExempt(segs)
		if _, err := v.checkString("path."+name, values[i], exempt, !exempt && v.isIdentifier(segs)); err != nil {
			return err
		}
	}
	return nil
}

func (v *Validator) isExempt(segs []segment) bool {
	for _, p := range v.exemptTree {
		if p.match(segs) {
			return true
		}
	}
	return false
}

func (v *Validator) isIdentifier(segs []segment) bool {
	for _, p := range v.identifier {
		if p.match(segs) {
			return true
		}
	}
	return false
}

// checkString runs every string check on s. It returns s without null bytes
// when s is free text (not an identifier, not exempt).
func (v *Validator) checkString(field, s string, exempt, ident bool) (string, error) {
	c, ve := v.check(s, exempt, ident)
	if ve != nil {
		ve.Field = field
		return "", ve
	}
	return c, nil
}

// check is checkString without the field name, which callers render only
// when there is a violation.
func (v *Validator) check(s string, exempt, ident bool) (string, *Violation) {
	if !utf8.ValidString(s) {
		return "", violation("", RuleInvalidUTF8, "is not valid UTF-8")
	}
	if ident {
		if strings.IndexByte(s, 0) >= 0 {
			return "", violation("", RuleNullByte, "must not contain a null byte")
		}
		if hasControl(s) {
			return "", violation("", RuleControlCharacter, "must not contain control characters")
		}
	} else if !exempt && strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if n := utf8.RuneCountInString(s); n > v.cfg.MaxStringLength {
		return "", violation("", RuleMaxLength, "is %d characters long, more than the limit of %d", n, v.cfg.MaxStringLength)
	}
	if exempt {
		return s, nil
	}
	if rule := v.detect(s); rule != "" {
		return "", violation("", rule, "%s", ruleMessage(rule))
	}
	return s, nil
}

func ruleMessage(rule string) string {
	switch rule {
	case RuleSQLInjection:
		return "looks like SQL injection"
	case RuleXSS:
		return "looks like cross-site scripting"
	case RuleCommandInjection:
		return "looks like shell command injection"
	}
	return "is not allowed"
}

// hasControl reports whether s holds a C0 control other than tab, newline
// and carriage return, DEL, or a C1 control.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r', c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			return true
		}
	}
	return false
}

// Plain reports whether s passes every check of v in any field: it is no
// longer than the length limit and made only of letters, digits and
// "_-.:@,", which no detector flags and no cleaning changes. It is exact
// for true only; a false says nothing, and s must be checked with String
// or within its document. Callers that have decoded a document can skip
// the walk of it when all its strings are plain (see the batch endpoint).
func (v *Validator) Plain(s string) bool {
	return len(s) <= v.cfg.MaxStringLength && !mayInject(s)
}
