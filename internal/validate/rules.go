package validate

import (
	"regexp"
	"strings"
)

// Patterns for attacks that libinjection lets through. libinjection judges
// whether a value parses as SQL or HTML with an attack in it; it does not
// report a bare quote-then-comment ("admin' #"), a stacked statement after a
// quote ("'; TRUNCATE TABLE t--"), a javascript: URL outside a tag, or a
// script tag it cannot tokenize ("<scr<script>ipt>"). Each pattern is
// narrow so prose does not match it, and RE2 matches in linear time.
//
// The two SQL checks are hand-written scans (they run on most values); the
// XSS ones are regular expressions that run only when a '<' or ':' is there.
var (
	// A script-capable URL scheme at the start of the value.
	xssScheme = regexp.MustCompile(`(?i)^[\x00-\x20]*(javascript|vbscript|livescript)\s*:`)
	// A script tag anywhere, however it is nested.
	xssScriptTag = regexp.MustCompile(`(?i)<\s*/?\s*script\b`)
	// An event handler attribute inside a tag, including the slash-separated
	// form browsers accept (<img/src=x/onerror=...>).
	xssHandler = regexp.MustCompile(`(?i)<[a-z][^<>]*[\s/"']on[a-z]{3,}\s*=`)
)

// extraSQLi reports a quote followed by only a comment ("admin' #", "';--")
// or a stacked statement after a quote or a bare number ("'; TRUNCATE
// TABLE t--", "1;(SELECT ...").
func extraSQLi(s string) bool {
	if strings.IndexByte(s, '\'') >= 0 && quoteThenComment(s) {
		return true
	}
	// lead is the end of the value's leading run of spaces and digits: a
	// ';' at or before it follows a bare number.
	lead := 0
	for lead < len(s) && (s[lead] == ' ' || s[lead] == '\t' || '0' <= s[lead] && s[lead] <= '9') {
		lead++
	}
	for i := strings.IndexByte(s, ';'); i >= 0; {
		if stackedAt(s, i, i <= lead) {
			return true
		}
		j := strings.IndexByte(s[i+1:], ';')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// quoteThenComment matches '\s*;?\s*(--|#|/\*)\s*$.
func quoteThenComment(s string) bool {
	s = strings.TrimRight(s, " \t\n\r\v\f")
	switch {
	case strings.HasSuffix(s, "--"), strings.HasSuffix(s, "/*"):
		s = s[:len(s)-2]
	case strings.HasSuffix(s, "#"):
		s = s[:len(s)-1]
	default:
		return false
	}
	s = strings.TrimRight(s, " \t\n\r\v\f")
	s = strings.TrimSuffix(s, ";")
	s = strings.TrimRight(s, " \t\n\r\v\f")
	return strings.HasSuffix(s, "'")
}

var stackedKeywords = []string{
	"select", "drop", "truncate", "delete", "insert", "update", "shutdown", "exec",
	"declare", "waitfor", "create", "alter",
}

// stackedAt reports whether the ';' at s[i] starts a stacked SQL statement:
// it follows a quote (with only spaces between) or a value that is only a
// number (afterNumber), and a statement keyword follows it. Each look is
// bounded, so scanning every ';' stays linear.
func stackedAt(s string, i int, afterNumber bool) bool {
	k := i - 1
	for k >= 0 && i-k <= maxSkip && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
		k--
	}
	if !afterNumber && (k < 0 || s[k] != '\'') {
		return false
	}
	after := s[i+1 : min(len(s), i+1+maxToken)]
	after = strings.TrimLeft(after, " \t\n\r")
	after = strings.TrimLeft(strings.TrimPrefix(after, "("), " \t\n\r")
	for _, kw := range stackedKeywords {
		if len(after) >= len(kw) && strings.EqualFold(after[:len(kw)], kw) &&
			(len(after) == len(kw) || !isAlnum(after[len(kw)]) && after[len(kw)] != '_') {
			return true
		}
	}
	return false
}

func extraXSS(s string) bool {
	if strings.IndexByte(s, ':') >= 0 && xssScheme.MatchString(s) {
		return true
	}
	if strings.IndexByte(s, '<') < 0 {
		return false
	}
	return xssScriptTag.MatchString(s) || xssHandler.MatchString(s)
}
