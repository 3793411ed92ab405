package auth

import (
	"strings"
	"testing"
)

func TestGrants(t *testing.T) {
	tests := []struct {
		pattern string
		perm    Permission
		want    bool
	}{
		{"*", TestsRead, true},
		{"*", AdminKeys, true},
		{"ab_testing.read", TestsRead, true},
		{"ab_testing.read", TestsCreate, false},
		{"ab_testing.*", TestsRead, true},
		{"ab_testing.*", TestsAnalyze, true},
		{"ab_testing.*", AdminKeys, false},
		{"workflow.*", "workflow.execute", true},
		{"workflow.*", "workflow.list", true},
		{"workflow.*", "workflows.delete", false},
		{"workflow.*", "workflow", false},
		{"workflow.*", "workflow.a.b", false},
		{"workflow", "workflow.list", false},
		{"*.read", TestsRead, true},
		{"*.read", TestsCreate, false},
		{"ab_testing", TestsRead, false},
		{"ab_testing.read.x", TestsRead, false},
		{"", TestsRead, false},
		{"ab_testing.rea", TestsRead, false},
		{"admin.*", AdminKeys, true},
		{"*.*", AdminKeys, true},
	}
	for _, tt := range tests {
		if got := Grants(tt.pattern, tt.perm); got != tt.want {
			t.Errorf("Grants(%q, %q) = %v, want %v", tt.pattern, tt.perm, got, tt.want)
		}
	}
}

func TestValidatePatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		wantErr  string
	}{
		{"all", []string{"*"}, ""},
		{"exact", []string{"ab_testing.read", "ab_testing.assign"}, ""},
		{"wildcard", []string{"ab_testing.*"}, ""},
		{"none", nil, "at least one"},
		{"typo", []string{"ab_testing.reed"}, "grants nothing"},
		{"upper case", []string{"AB_TESTING.read"}, "segments are"},
		{"empty segment", []string{"ab_testing..read"}, "segments are"},
		{"too deep", []string{"a.b.c.d.e.f"}, "more than 5"},
		{"unknown wildcard", []string{"workflow.*"}, "grants nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePatterns(tt.patterns)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ValidatePatterns(%q) = %v, want error containing %q", tt.patterns, err, tt.wantErr)
			}
		})
	}
}
