package auth

import (
	"fmt"
	"strings"
)

// Permission names an action a key may perform, as dot-separated segments
// such as "ab_testing.read". A key's permission patterns may use "*" for a
// whole segment ("ab_testing.*" grants "ab_testing.read" but not
// "ab_testing_v2.read" nor "ab_testing"), or be "*" alone, which grants
// everything.
type Permission string

// The permissions of the API. Every route declares one (see api/routes.go);
// the README lists them.
const (
	// Public marks a route that needs no key (health, metrics, the API
	// description). It is not a grantable permission.
	Public Permission = "public"

	TestsCreate  Permission = "ab_testing.create"
	TestsRead    Permission = "ab_testing.read"
	TestsManage  Permission = "ab_testing.manage"
	TestsAssign  Permission = "ab_testing.assign"
	TestsRecord  Permission = "ab_testing.record"
	TestsAnalyze Permission = "ab_testing.analyze"
	AdminKeys    Permission = "admin.keys"
	AdminCache   Permission = "admin.cache"

	// All is the pattern that grants every permission.
	All = "*"
)

// Known lists every permission that some route requires. A key's patterns
// must each grant at least one of them, which catches typos at creation.
var Known = []Permission{TestsCreate, TestsRead, TestsManage, TestsAssign, TestsRecord, TestsAnalyze, AdminKeys, AdminCache}

// Grants reports whether pattern grants p. It does not allocate.
func Grants(pattern string, p Permission) bool {
	if pattern == All {
		return true
	}
	rest := string(p)
	for {
		ps, pRest, pMore := strings.Cut(pattern, ".")
		ss, sRest, sMore := strings.Cut(rest, ".")
		if ps != "*" && ps != ss {
			return false
		}
		if pMore != sMore {
			return false // a different number of segments
		}
		if !pMore {
			return true
		}
		pattern, rest = pRest, sRest
	}
}

// ValidatePatterns checks a key's permission patterns: each is "*" or one to
// five segments of [a-z0-9_] or "*", and grants at least one known
// permission.
func ValidatePatterns(patterns []string) error {
	if len(patterns) == 0 {
		return fmt.Errorf("permissions: want at least one, such as %q or %q", TestsRead, All)
	}
	if len(patterns) > 64 {
		return fmt.Errorf("permissions: %d patterns, want at most 64", len(patterns))
	}
	for _, pat := range patterns {
		if pat == All {
			continue
		}
		segs := strings.Split(pat, ".")
		if len(segs) > 5 {
			return fmt.Errorf("permission %q: more than 5 segments", pat)
		}
		for _, seg := range segs {
			if seg == "*" {
				continue
			}
			if seg == "" || strings.IndexFunc(seg, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
			}) >= 0 {
				return fmt.Errorf("permission %q: segments are lower-case letters, digits and _, or *", pat)
			}
		}
		granted := false
		for _, k := range Known {
			if Grants(pat, k) {
				granted = true
				break
			}
		}
		if !granted {
			return fmt.Errorf("permission %q grants nothing: known permissions are %s", pat, knownList())
		}
	}
	return nil
}

func knownList() string {
	s := make([]string, len(Known))
	for i, k := range Known {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
