// Package arch holds tests of the repository's architecture: which packages
// may import which (STYLE.md, "Dependency direction").
package arch

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/abacus-ab/abacus"

// deps returns the module packages that pkg imports, directly or through
// other module packages, from non-test files.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		dir := filepath.Join("..", "..", strings.TrimPrefix(strings.TrimPrefix(p, module), "/"))
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module+"/") && !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// allowed are the exceptions to TestDependencyDirection's rules. The API
// plans POST /power in process with analysis/stats, a pure leaf
// (TestStatsIsPure).
var allowed = map[string][]string{"api": {"analysis/stats"}}

func TestDependencyDirection(t *testing.T) {
	tests := []struct {
		pkg    string
		forbid []string
	}{
		{"api", []string{"ingest", "analysis"}},
		{"ingest", []string{"api", "analysis"}},
		{"analysis", []string{"api", "ingest"}},
		{"experiment", []string{"api", "ingest", "analysis", "internal", "schemas"}},
		{"schemas/eventv1", []string{"api", "ingest", "analysis", "internal", "experiment"}},
		{"internal/eventbus", []string{"api", "ingest", "analysis"}},
		{"internal/chdb", []string{"api", "ingest", "analysis"}},
		{"internal/loadcheck", []string{"api", "ingest", "analysis"}},
		{"internal/registry", []string{"api", "ingest", "analysis"}},
		{"internal/auth", []string{"api", "ingest", "analysis"}},
		{"internal/kvwatch", []string{"api", "ingest", "analysis", "experiment"}},
		// The SDK is linked into applications.
		{"sdk/go/client", []string{"api", "ingest", "analysis", "internal"}},
		{"sdk/go/provider", []string{"api", "ingest", "analysis", "internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			for _, d := range deps(t, module+"/"+tt.pkg) {
				rel := strings.TrimPrefix(d, module+"/")
				if slices.Contains(allowed[tt.pkg], rel) {
					continue
				}
				for _, f := range tt.forbid {
					if rel == f || strings.HasPrefix(rel, f+"/") {
						t.Errorf("%s imports %s (directly or indirectly); the layout forbids it", tt.pkg, rel)
					}
				}
			}
		})
	}
}

// TestLeafPackagesUseOnlyStdlib keeps experiment and eventv1 free of
// third-party imports, so the domain and the wire format stay dependency-free.
func TestLeafPackagesUseOnlyStdlib(t *testing.T) {
	for _, pkg := range []string{"experiment", "schemas/eventv1"} {
		bp, err := build.ImportDir(filepath.Join("..", "..", pkg), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range bp.Imports {
			if first := strings.SplitN(imp, "/", 2)[0]; strings.Contains(first, ".") {
				t.Errorf("%s imports %s: only the standard library is allowed", pkg, imp)
			}
		}
	}
}

// TestStatsIsPure keeps analysis/stats a leaf of pure functions (the
// standard library and gonum only, no I/O packages; stats/doc.go), so the
// API may import it to plan POST /power in process.
func TestStatsIsPure(t *testing.T) {
	bp, err := build.ImportDir(filepath.Join("..", "..", "analysis", "stats"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range bp.Imports {
		first := strings.SplitN(imp, "/", 2)[0]
		switch {
		case strings.HasPrefix(imp, "gonum.org/v1/gonum/"):
		case strings.Contains(first, "."):
			t.Errorf("analysis/stats imports %s: only the standard library and gonum are allowed", imp)
		case slices.Contains([]string{"net", "os", "io", "database", "syscall"}, first):
			t.Errorf("analysis/stats imports %s: it does no I/O", imp)
		}
	}
}
