package validate

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// segment is one step of a JSON path: an object key or an array index.
type segment struct {
	key   string
	index int // -1 for a key
}

// renderPath writes segs the way Violation.Field shows them:
// "variants[1].variant_name".
func renderPath(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// parseField splits a rendered path back into segments. It never fails: text
// that is not a valid index is taken as part of a key.
func parseField(field string) []segment {
	var segs []segment
	for _, part := range strings.Split(field, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" || rest == "" {
			segs = append(segs, segment{key: key, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 || strconv.Itoa(n) != num {
				// Not an index: keep the text as (part of) a key.
				if len(segs) == 0 || segs[len(segs)-1].index >= 0 {
					segs = append(segs, segment{index: -1})
				}
				segs[len(segs)-1].key += "[" + rest
				break
			}
			segs = append(segs, segment{index: n})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

type pkind uint8

const (
	pKey      pkind = iota // key glob, '*' matches any run
	pAnyIndex              // [*]
	pIndex                 // [n]
	pAny                   // **
)

// The shapes of a key glob that step matches without globMatch.
const (
	globOther   = iota
	globLiteral // no '*'
	globSuffix  // '*' then no '*', as in "*_id"
)

type pseg struct {
	kind  pkind
	glob  string
	index int
	shape uint8 // of glob
}

// pattern is a parsed ExemptFields or IdentifierFields entry; see Config.
type pattern []pseg

func parsePattern(s string) (pattern, error) {
	if s == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	var p pattern
	for _, part := range strings.Split(s, ".") {
		if part == "**" {
			p = append(p, pseg{kind: pAny})
			continue
		}
		key, rest, hasIdx := strings.Cut(part, "[")
		if key == "" && !hasIdx {
			return nil, fmt.Errorf("pattern %q has an empty segment", s)
		}
		if key != "" {
			if strings.Contains(key, "]") {
				return nil, fmt.Errorf("pattern %q has a stray ]", s)
			}
			// Keys match case-insensitively, as encoding/json matches
			// field names: {"USER_ID": ...} fills user_id.
			glob := strings.ToLower(key)
			shape := globOther
			switch {
			case !strings.Contains(glob, "*"):
				shape = globLiteral
			case strings.LastIndexByte(glob, '*') == 0:
				shape = globSuffix
			}
			p = append(p, pseg{kind: pKey, glob: glob, shape: uint8(shape)})
		}
		for hasIdx {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				return nil, fmt.Errorf("pattern %q has an unclosed [", s)
			}
			if idx == "*" {
				p = append(p, pseg{kind: pAnyIndex})
			} else {
				n, err := strconv.Atoi(idx)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("pattern %q has a bad index [%s]", s, idx)
				}
				p = append(p, pseg{kind: pIndex, index: n})
			}
			if after == "" {
				break
			}
			if after[0] != '[' {
				return nil, fmt.Errorf("pattern %q has text after ]", s)
			}
			rest = after[1:]
		}
	}
	return p, nil
}

func (ps pseg) matchOne(s segment) bool {
	switch ps.kind {
	case pKey:
		return s.index < 0 && globMatch(ps.glob, strings.ToLower(s.key))
	case pAnyIndex:
		return s.index >= 0
	case pIndex:
		return s.index == ps.index
	}
	return false
}

// match reports whether p matches all of segs. It is the classic wildcard
// algorithm with "**" as the star: it backtracks only to the last "**", so it
// runs in O(len(p)*len(segs)).
func (p pattern) match(segs []segment) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(segs) {
		switch {
		case pi < len(p) && p[pi].kind == pAny:
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi].matchOne(segs[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].kind == pAny {
		pi++
	}
	return pi == len(p)
}

// maxStepLen is the longest pattern step can match: its states, p[:0]
// through p[:len(p)], must fit in a uint64.
const maxStepLen = 63

// The JSON walker matches patterns incrementally, as a set of states per open
// container, so that each member costs one step rather than a full match of
// its path. A state set has bit i set when p[:i] matches the path so far; it
// is the NFA view of match and gives the same answers.

// start returns the states for the empty path.
func (p pattern) start() uint64 { return p.closure(1) }

// closure adds the states reached by letting each "**" match nothing.
func (p pattern) closure(s uint64) uint64 {
	for i, ps := range p {
		if ps.kind == pAny && s&(1<<i) != 0 {
			s |= 1 << (i + 1)
		}
	}
	return s
}

// step returns the states after one more segment: an object key, already
// lower-cased, when index < 0, else an array index.
func (p pattern) step(s uint64, lowerKey []byte, index int) uint64 {
	var next uint64
	for s != 0 {
		i := bits.TrailingZeros64(s)
		s &= s - 1
		if i == len(p) {
			continue
		}
		var ok bool
		switch ps := p[i]; ps.kind {
		case pAny:
			next |= 1 << i
		case pKey:
			ok = index < 0 && ps.matchKey(lowerKey)
		case pAnyIndex:
			ok = index >= 0
		case pIndex:
			ok = index == ps.index
		}
		if ok {
			next |= 1 << (i + 1)
		}
	}
	if next == 0 {
		return 0
	}
	return p.closure(next)
}

// matchKey is globMatch(ps.glob, key), with shortcuts for the usual shapes.
func (ps pseg) matchKey(key []byte) bool {
	switch ps.shape {
	case globLiteral:
		return string(key) == ps.glob
	case globSuffix:
		n := len(ps.glob) - 1
		return len(key) >= n && string(key[len(key)-n:]) == ps.glob[1:]
	}
	return globMatch(ps.glob, key)
}

// accepts reports whether states s hold a full match of p.
func (p pattern) accepts(s uint64) bool { return s&(1<<len(p)) != 0 }

// globMatch matches s against a glob where '*' is any run of bytes.
func globMatch[S string | []byte](glob string, s S) bool {
	gi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && glob[gi] == '*':
			star, mark = gi, si
			gi++
		case gi < len(glob) && glob[gi] == s[si]:
			gi++
			si++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}
