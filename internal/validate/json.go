package validate

import (
	"unicode/utf16"
	"unicode/utf8"
)

// JSON validates a JSON body: its syntax, the depth and element limits, and
// every object key and string value with its JSON path. A null byte in a
// free-text string is not an error (Sanitize removes it); callers that keep
// the body should call Sanitize instead.
func (v *Validator) JSON(body []byte) error {
	_, err := v.walk(body, false)
	return err
}

// Sanitize validates body like JSON and returns it with the \u0000 escapes
// removed from free-text strings outside ExemptFields. Nothing else changes:
// every other byte, including whitespace and escapes, is kept as sent. When
// there is nothing to remove it returns body itself, without copying.
func (v *Validator) Sanitize(body []byte) ([]byte, error) {
	return v.walk(body, true)
}

// The walker is a hand-rolled single-pass JSON scanner. It never builds the
// document: its state is one frame per open object or array (at most
// MaxDepth of them) and the current string, so a crafted body can exhaust
// neither the stack nor the heap. It is several times faster than
// encoding/json's Decoder.Token, which allocates for every token.

type frame struct {
	obj    bool
	exempt bool // this container is inside an exempt subtree
	n      int  // members or items so far
}

type walker struct {
	v        *Validator
	data     []byte
	pos      int
	frames   []frame
	segs     []segment // path of the value being read
	elements int
	buf      []byte   // decoded string
	cut      [][2]int // byte ranges of \u0000 escapes to remove
	nulls    []int    // their start offsets in the string being decoded
}

func (v *Validator) walk(body []byte, sanitize bool) ([]byte, error) {
	w := &walker{v: v, data: body}
	if err := w.document(); err != nil {
		return nil, err
	}
	if !sanitize || len(w.cut) == 0 {
		return body, nil
	}
	out := make([]byte, 0, len(body))
	prev := 0
	for _, c := range w.cut {
		out = append(out, body[prev:c[0]]...)
		prev = c[1]
	}
	return append(out, body[prev:]...), nil
}

func (w *walker) field() string { return renderPath(w.segs) }

func (w *walker) syntax(format string, args ...any) error {
	args = append(args, w.pos)
	return violation("", RuleInvalidJSON, format+" at byte %d", args...)
}

func (w *walker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) document() error {
	w.skipSpace()
	if w.pos == len(w.data) {
		return violation("", RuleInvalidJSON, "body is empty")
	}
	if err := w.value(false); err != nil {
		return err
	}
	w.skipSpace()
	if w.pos != len(w.data) {
		return w.syntax("unexpected data after the JSON value")
	}
	return nil
}

// value reads one JSON value. Objects and arrays are read iteratively by
// container; value itself never recurses.
func (w *walker) value(exempt bool) error {
	if err := w.scalarOrOpen(exempt); err != nil {
		return err
	}
	for len(w.frames) > 0 {
		top := &w.frames[len(w.frames)-1]
		w.skipSpace()
		if w.pos == len(w.data) {
			return w.syntax("unexpected end of input")
		}
		c := w.data[w.pos]
		closer := byte(']')
		if top.obj {
			closer = '}'
		}
		if c == closer {
			w.pos++
			w.frames = w.frames[:len(w.frames)-1]
			w.segs = w.segs[:len(w.segs)-1]
			continue
		}
		if top.n > 0 {
			if c != ',' {
				return w.syntax("expected ',' or '%c'", closer)
			}
			w.pos++
			w.skipSpace()
		}
		w.elements++
		if w.elements > w.v.cfg.MaxElements {
			return violation(w.field(), RuleMaxElements, "the body has more than %d array items and object members", w.v.cfg.MaxElements)
		}
		top.n++
		seg := &w.segs[len(w.segs)-1]
		if top.obj {
			if w.pos == len(w.data) || w.data[w.pos] != '"' {
				return w.syntax("expected a string key")
			}
			key, err := w.key(top.exempt)
			if err != nil {
				return err
			}
			seg.key, seg.index = key, -1
			w.skipSpace()
			if w.pos == len(w.data) || w.data[w.pos] != ':' {
				return w.syntax("expected ':'")
			}
			w.pos++
			w.skipSpace()
		} else {
			seg.key, seg.index = "", top.n-1
		}
		exempt := top.exempt || w.v.isExemptLeaf(w.segs)
		if err := w.scalarOrOpen(exempt); err != nil {
			return err
		}
	}
	return nil
}

// isExemptLeaf reports whether the full path segs is matched by an exempt
// pattern. Prefixes are handled by the frames' exempt flag.
func (v *Validator) isExemptLeaf(segs []segment) bool {
	for _, p := range v.exempt {
		if p.match(segs) {
			return true
		}
	}
	return false
}

// scalarOrOpen reads a scalar, or the opening bracket of a container, which
// it pushes.
func (w *walker) scalarOrOpen(exempt bool) error {
	if w.pos == len(w.data) {
		return w.syntax("unexpected end of input")
	}
	switch c := w.data[w.pos]; {
	case c == '{' || c == '[':
		if len(w.frames) >= w.v.cfg.MaxDepth {
			return violation(w.field(), RuleMaxDepth, "nesting is deeper than %d levels", w.v.cfg.MaxDepth)
		}
		w.pos++
		w.frames = append(w.frames, frame{obj: c == '{', exempt: exempt})
		w.segs = append(w.segs, segment{index: -1})
		return nil
	case c == '"':
		return w.stringValue(exempt)
	case c == '-' || ('0' <= c && c <= '9'):
		return w.number()
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	}
	return w.syntax("unexpected character %q", w.data[w.pos])
}

func (w *walker) literal(lit string) error {
	if len(w.data)-w.pos < len(lit) || string(w.data[w.pos:w.pos+len(lit)]) != lit {
		return w.syntax("invalid literal")
	}
	w.pos += len(lit)
	return nil
}

func (w *walker) number() error {
	start := w.pos
	d := w.data
	if d[w.pos] == '-' {
		w.pos++
	}
	digits := func() int {
		n := 0
		for w.pos < len(d) && '0' <= d[w.pos] && d[w.pos] <= '9' {
			w.pos++
			n++
		}
		return n
	}
	if w.pos < len(d) && d[w.pos] == '0' {
		w.pos++
	} else if digits() == 0 {
		return w.syntax("invalid number")
	}
	if w.pos < len(d) && d[w.pos] == '.' {
		w.pos++
		if digits() == 0 {
			return w.syntax("invalid number")
		}
	}
	if w.pos < len(d) && (d[w.pos] == 'e' || d[w.pos] == 'E') {
		w.pos++
		if w.pos < len(d) && (d[w.pos] == '+' || d[w.pos] == '-') {
			w.pos++
		}
		if digits() == 0 {
			return w.syntax("invalid number")
		}
	}
	if n := w.pos - start; n > w.v.cfg.MaxStringLength {
		return violation(w.field(), RuleMaxLength, "is a number %d characters long, more than the limit of %d", n, w.v.cfg.MaxStringLength)
	}
	return nil
}

// key reads an object key. Outside exempt subtrees keys are identifiers: a
// null byte or a control character is an error. The Violation names the
// object, not the key, which is the offending value.
func (w *walker) key(exempt bool) (string, error) {
	if err := w.readString(); err != nil {
		return "", err
	}
	s := string(w.buf)
	if _, ve := w.v.check(s, exempt, !exempt); ve != nil {
		// The segment for this key is not set yet: name the parent.
		ve.Field = renderPath(w.segs[:len(w.segs)-1])
		ve.Message = "an object key " + ve.Message
		return "", ve
	}
	return s, nil
}

func (w *walker) stringValue(exempt bool) error {
	start := w.pos
	if err := w.readString(); err != nil {
		return err
	}
	ident := !exempt && w.v.isIdentifier(w.segs)
	if _, ve := w.v.check(string(w.buf), exempt, ident); ve != nil {
		ve.Field = w.field()
		return ve
	}
	if !exempt && !ident {
		for _, off := range w.nulls {
			w.cut = append(w.cut, [2]int{start + off, start + off + 6})
		}
	}
	return nil
}

// readString decodes the string at w.pos (which holds '"') into w.buf and
// records the offsets, relative to the opening quote, of \u0000 escapes.
func (w *walker) readString() error {
	d := w.data
	start := w.pos
	w.pos++
	w.buf = w.buf[:0]
	w.nulls = w.nulls[:0]
	for {
		// Copy the run up to the next quote, backslash or control byte.
		run := w.pos
		for w.pos < len(d) {
			c := d[w.pos]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			w.pos++
		}
		w.buf = append(w.buf, d[run:w.pos]...)
		if w.pos == len(d) {
			return w.syntax("unterminated string")
		}
		switch c := d[w.pos]; {
		case c == '"':
			w.pos++
			if !utf8.Valid(w.buf) {
				return violation(w.field(), RuleInvalidUTF8, "is not valid UTF-8")
			}
			return nil
		case c < 0x20:
			return w.syntax("control character in string")
		}
		// Backslash escape.
		if w.pos+1 >= len(d) {
			return w.syntax("unterminated string")
		}
		esc := d[w.pos+1]
		switch esc {
		case '"', '\\', '/':
			w.buf = append(w.buf, esc)
		case 'b':
			w.buf = append(w.buf, '\b')
		case 'f':
			w.buf = append(w.buf, '\f')
		case 'n':
			w.buf = append(w.buf, '\n')
		case 'r':
			w.buf = append(w.buf, '\r')
		case 't':
			w.buf = append(w.buf, '\t')
		case 'u':
			r, ok := hex4(d, w.pos+2)
			if !ok {
				return w.syntax("invalid \\u escape")
			}
			n := 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if w.pos+7 < len(d) && d[w.pos+6] == '\\' && d[w.pos+7] == 'u' {
					r2, ok2 = hex4(d, w.pos+8)
				}
				dec := utf16.DecodeRune(r, r2)
				if !ok2 || dec == utf8.RuneError {
					// A lone surrogate is not a character.
					return violation(w.field(), RuleInvalidUTF8, "holds an unpaired UTF-16 surrogate")
				}
				r = dec
				n = 12
			}
			if r == 0 {
				w.nulls = append(w.nulls, w.pos-start)
			}
			w.buf = utf8.AppendRune(w.buf, r)
			w.pos += n
			continue
		default:
			return w.syntax("invalid escape")
		}
		w.pos += 2
	}
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}
