package validate

import (
	"html"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/libinjection-go"
	"golang.org/x/text/unicode/norm"
)

// maxForms bounds the decoded forms of one value that detection looks at.
const maxForms = 10

// forms is the value as sent plus the distinct forms a browser, a URL
// decoder or a database might turn it into: up to three rounds of URL
// decoding, up to two rounds of HTML entity decoding of each, and the NFKC
// normalisation of any with non-ASCII characters (fullwidth "＜" is "<"),
// URL-decoded again if that revealed a percent sign. A form with a colon and
// tabs or newlines also appears without them, as a browser reads a URL.
type forms struct {
	list [maxForms]string
	n    int
}

func (f *forms) add(s string) {
	if f.n == maxForms {
		return
	}
	for _, x := range f.list[:f.n] {
		if x == s {
			return
		}
	}
	f.list[f.n] = s
	f.n++
}

func decodedForms(f *forms, s string) {
	f.add(s)
	cur := s
	for range 3 {
		if !strings.ContainsAny(cur, "%+") {
			break
		}
		d := urlDecode(cur)
		if d == cur {
			break
		}
		f.add(d)
		cur = d
	}
	for i, n := 0, f.n; i < n; i++ {
		cur := f.list[i]
		for range 2 {
			if strings.IndexByte(cur, '&') < 0 {
				break
			}
			d := html.UnescapeString(cur)
			if d == cur {
				break
			}
			f.add(d)
			cur = d
		}
	}
	// Browsers drop tabs and newlines inside URLs: "jav\tascript:".
	for i, n := 0, f.n; i < n; i++ {
		if strings.ContainsAny(f.list[i], "\t\n\r") && strings.IndexByte(f.list[i], ':') >= 0 {
			f.add(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(f.list[i]))
		}
	}
	for i, n := 0, f.n; i < n; i++ {
		if isASCII(f.list[i]) {
			continue
		}
		d := norm.NFKC.String(f.list[i])
		if d == f.list[i] {
			continue
		}
		f.add(d)
		if strings.IndexByte(d, '%') >= 0 {
			f.add(urlDecode(d))
		}
		if strings.IndexByte(d, '&') >= 0 {
			f.add(html.UnescapeString(d))
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// urlDecode decodes %XX, the IIS-style %uXXXX and '+' as a space, leaving
// malformed escapes as they are. Unlike url.QueryUnescape it never fails,
// because attackers do not send well-formed input.
func urlDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') &&
			isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]):
			r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
			b.WriteRune(r)
			i += 5
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// detect returns the rule s breaks, or "".
func (v *Validator) detect(s string) string {
	if s == "" || !mayInject(s) {
		return ""
	}
	var f forms
	decodedForms(&f, s)
	for _, x := range f.list[:f.n] {
		if v.cfg.EnableSQLInjection {
			if sqli, _ := libinjection.IsSQLi(x); sqli || extraSQLi(x) {
				return RuleSQLInjection
			}
		}
		// libinjection's XSS check needs a tag or an attribute ('<' or
		// '='); a bare "javascript:" URL is extraXSS's.
		if v.cfg.EnableXSS && (strings.ContainsAny(x, "<=") && libinjection.IsXSS(x) || extraXSS(x)) {
			return RuleXSS
		}
		if v.cfg.EnableCommandInjection && detectCommand(x) {
			return RuleCommandInjection
		}
	}
	return ""
}

// mayInject is a fast pre-filter: a value made only of letters, digits and
// "_-.:@," (identifiers, slugs, numbers, timestamps, emails) cannot hold any
// of the three attacks: each needs a space, quote, bracket, operator, or an
// encoding of one.
func mayInject[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == ',' {
			continue
		}
		return true
	}
	return false
}
