package validate

import (
	"strings"
	"sync"
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

// pathSeg is a segment of the walker's path. It holds where the key is in
// the body rather than the key itself: keys are decoded again only to name a
// violation, so reading one allocates nothing.
type pathSeg struct {
	keyAt int // offset of the key's opening quote, or -1 for no key
	index int // -1 for a key
}

type walker struct {
	v        *Validator
	data     []byte
	pos      int
	frames   []frame
	path     []pathSeg // path of the value being read
	elements int
	str      []byte   // decoded string: a slice of data or of buf
	buf      []byte   // decoded string with escapes
	cut      [][2]int // byte ranges of \u0000 escapes to remove
	nulls    []int    // their start offsets in the string being decoded

	// With v.stepping, states holds the pattern states (see step) of each
	// open container's own path, len(v.start) per frame, and cur those of
	// the value being read.
	states []uint64
	cur    []uint64
	lower  []byte // the current key, lower-cased
}

// walkers recycles walkers and their buffers: a batch endpoint validates
// many small bodies, for which the allocations would cost more than the scan.
var walkers = sync.Pool{New: func() any { return new(walker) }}

// maxPooled bounds the memory, in bytes, of the buffers a pooled walker
// keeps, so that one huge body does not pin its memory.
const maxPooled = 64 << 10

func (v *Validator) walk(body []byte, sanitize bool) ([]byte, error) {
	w := walkers.Get().(*walker)
	defer w.release()
	w.v, w.data = v, body
	w.cur = append(w.cur[:0], v.start...)
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

// release resets w and returns it to the pool.
func (w *walker) release() {
	size := cap(w.buf) + cap(w.lower) + 16*(cap(w.cut)+cap(w.frames)+cap(w.path)) +
		8*(cap(w.nulls)+cap(w.states)+cap(w.cur))
	if size > maxPooled {
		return
	}
	*w = walker{
		frames: w.frames[:0],
		path:   w.path[:0],
		buf:    w.buf[:0],
		cut:    w.cut[:0],
		nulls:  w.nulls[:0],
		states: w.states[:0],
		cur:    w.cur[:0],
		lower:  w.lower[:0],
	}
	walkers.Put(w)
}

func (w *walker) field() string { return renderPath(w.segments(w.path)) }

// segments returns path with its keys decoded.
func (w *walker) segments(path []pathSeg) []segment {
	segs := make([]segment, len(path))
	for i, ps := range path {
		segs[i].index = ps.index
		if ps.keyAt >= 0 {
			// The key was read once already, so this cannot fail.
			r := walker{v: w.v, data: w.data, pos: ps.keyAt}
			_ = r.readString()
			segs[i].key = string(r.str)
		}
	}
	return segs
}

// enter sets w.cur to the states of w.path, whose last segment is the key in
// w.str or an array index, from those of its container.
func (w *walker) enter() {
	v := w.v
	if !v.stepping {
		return
	}
	n := len(v.start)
	parent := w.states[len(w.states)-n:]
	seg := w.path[len(w.path)-1]
	if seg.index < 0 {
		w.lowerKey()
	}
	for i, p := range v.identifier {
		w.cur[i] = p.step(parent[i], w.lower, seg.index)
	}
	for i, p := range v.exempt {
		j := len(v.identifier) + i
		w.cur[j] = p.step(parent[j], w.lower, seg.index)
	}
}

// lowerKey sets w.lower to the key in w.str lower-cased as pseg.matchOne
// does it, without allocating for an ASCII key.
func (w *walker) lowerKey() {
	w.lower = append(w.lower[:0], w.str...)
	for i, c := range w.lower {
		if c >= utf8.RuneSelf {
			w.lower = append(w.lower[:0], strings.ToLower(string(w.str))...)
			return
		}
		if 'A' <= c && c <= 'Z' {
			w.lower[i] = c + 'a' - 'A'
		}
	}
}

// isIdentifier reports whether the value at w.path is an identifier.
func (w *walker) isIdentifier() bool {
	if !w.v.stepping {
		return w.v.isIdentifier(w.segments(w.path))
	}
	for i, p := range w.v.identifier {
		if p.accepts(w.cur[i]) {
			return true
		}
	}
	return false
}

// isExemptLeaf reports whether the full path w.path is matched by an exempt
// pattern. Prefixes are handled by the frames' exempt flag.
func (w *walker) isExemptLeaf() bool {
	if !w.v.stepping {
		return w.v.isExemptLeaf(w.segments(w.path))
	}
	for i, p := range w.v.exempt {
		if p.accepts(w.cur[len(w.v.identifier)+i]) {
			return true
		}
	}
	return false
}

// check is Validator.check on the string in w.str. A string made only of
// letters, digits and "_-.:@," (most keys, identifiers and enum values)
// passes every check but the length limit, so it skips the conversion.
func (w *walker) check(exempt, ident bool) *Violation {
	if len(w.str) <= w.v.cfg.MaxStringLength && !mayInject(w.str) {
		return nil
	}
	_, ve := w.v.check(string(w.str), exempt, ident)
	return ve
}

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
			w.path = w.path[:len(w.path)-1]
			if w.v.stepping {
				w.states = w.states[:len(w.states)-len(w.v.start)]
			}
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
		seg := &w.path[len(w.path)-1]
		if top.obj {
			if w.pos == len(w.data) || w.data[w.pos] != '"' {
				return w.syntax("expected a string key")
			}
			at := w.pos
			if err := w.key(top.exempt); err != nil {
				return err
			}
			seg.keyAt, seg.index = at, -1
			w.skipSpace()
			if w.pos == len(w.data) || w.data[w.pos] != ':' {
				return w.syntax("expected ':'")
			}
			w.pos++
			w.skipSpace()
		} else {
			seg.keyAt, seg.index = -1, top.n-1
		}
		w.enter()
		exempt := top.exempt || w.isExemptLeaf()
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
		w.path = append(w.path, pathSeg{keyAt: -1, index: -1})
		if w.v.stepping {
			w.states = append(w.states, w.cur...)
		}
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
func (w *walker) key(exempt bool) error {
	if err := w.readString(); err != nil {
		return err
	}
	if ve := w.check(exempt, !exempt); ve != nil {
		// The segment for this key is not set yet: name the parent.
		ve.Field = renderPath(w.segments(w.path[:len(w.path)-1]))
		ve.Message = "an object key " + ve.Message
		return ve
	}
	return nil
}

func (w *walker) stringValue(exempt bool) error {
	start := w.pos
	if err := w.readString(); err != nil {
		return err
	}
	ident := !exempt && w.isIdentifier()
	if ve := w.check(exempt, ident); ve != nil {
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

// readString decodes the string at w.pos (which holds '"') into w.str and
// records the offsets, relative to the opening quote, of \u0000 escapes.
func (w *walker) readString() error {
	d := w.data
	start := w.pos
	w.pos++
	w.buf = w.buf[:0]
	w.nulls = w.nulls[:0]
	// high collects the bits of the bytes copied as they are: escapes
	// always decode to valid UTF-8, so only a non-ASCII byte needs checking.
	var high byte
	for {
		// Copy the run up to the next quote, backslash or control byte.
		run := w.pos
		for w.pos < len(d) {
			c := d[w.pos]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			high |= c
			w.pos++
		}
		if run == start+1 && w.pos < len(d) && d[w.pos] == '"' {
			// No escapes: use the bytes as sent, without a copy.
			w.str = d[run:w.pos]
		} else {
			w.buf = append(w.buf, d[run:w.pos]...)
			w.str = w.buf
		}
		if w.pos == len(d) {
			return w.syntax("unterminated string")
		}
		switch c := d[w.pos]; {
		case c == '"':
			w.pos++
			if high >= utf8.RuneSelf && !utf8.Valid(w.str) {
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
