package validate

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readCorpus returns the payloads of a testdata corpus: one per line, taken
// verbatim, skipping empty lines and lines starting with "## ".
func readCorpus(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "## ") {
			continue
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestCorpus measures detection on the attack corpora and false positives on
// the benign one, through the public String method on a free-text field.
func TestCorpus(t *testing.T) {
	v, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	attacks := []struct {
		file    string
		rule    string
		minRate float64
		minSize int
	}{
		{"sqli.txt", RuleSQLInjection, 0.95, 150},
		{"xss.txt", RuleXSS, 0.95, 100},
		{"command_injection.txt", RuleCommandInjection, 0.95, 100},
	}
	for _, a := range attacks {
		t.Run(a.file, func(t *testing.T) {
			lines := readCorpus(t, a.file)
			if len(lines) < a.minSize {
				t.Fatalf("%s has %d payloads, want at least %d", a.file, len(lines), a.minSize)
			}
			caught, asRule := 0, 0
			for _, s := range lines {
				err := v.String("description", s)
				var ve *Violation
				if errors.As(err, &ve) {
					caught++
					if ve.Rule == a.rule {
						asRule++
					}
					if strings.Contains(ve.Error(), s) {
						t.Errorf("violation message %q contains the payload", ve.Error())
					}
					continue
				}
				t.Logf("missed: %q", s)
			}
			rate := float64(caught) / float64(len(lines))
			t.Logf("%s: detected %d/%d = %.1f%% (%d as %s)", a.file, caught, len(lines), 100*rate, asRule, a.rule)
			if rate < a.minRate {
				t.Errorf("detection rate %.1f%%, want >= %.0f%%", 100*rate, 100*a.minRate)
			}
		})
	}
	t.Run("benign.txt", func(t *testing.T) {
		lines := readCorpus(t, "benign.txt")
		if len(lines) < 500 {
			t.Fatalf("benign.txt has %d lines, want at least 500", len(lines))
		}
		flagged := 0
		for _, s := range lines {
			if err := v.String("description", s); err != nil {
				flagged++
				t.Logf("false positive: %q: %v", s, err)
			}
		}
		rate := float64(flagged) / float64(len(lines))
		t.Logf("benign.txt: false positives %d/%d = %.2f%%", flagged, len(lines), 100*rate)
		if rate > 0.01 {
			t.Errorf("false-positive rate %.2f%%, want <= 1%%", 100*rate)
		}
	})
}

// TestHoldout measures the corpora written after tuning. It logs the rates
// and fails only on a gross regression; see testdata/README.md.
func TestHoldout(t *testing.T) {
	v, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	benign := readCorpus(t, "holdout_benign.txt")
	flagged := 0
	for _, s := range benign {
		if err := v.String("description", s); err != nil {
			flagged++
			t.Logf("false positive: %q: %v", s, err)
		}
	}
	t.Logf("holdout_benign.txt: false positives %d/%d", flagged, len(benign))
	caught, total := map[string]int{}, map[string]int{}
	for _, line := range readCorpus(t, "holdout_attacks.txt") {
		want, s, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("holdout line %q has no tab", line)
		}
		total[want]++
		if err := v.String("description", s); err != nil {
			caught[want]++
		} else {
			t.Logf("missed %s: %q", want, s)
		}
	}
	for rule, n := range total {
		t.Logf("holdout_attacks.txt: %s detected %d/%d", rule, caught[rule], n)
		if float64(caught[rule]) < 0.8*float64(n) {
			t.Errorf("%s hold-out detection %d/%d is below 80%%", rule, caught[rule], n)
		}
	}
	if float64(flagged) > 0.05*float64(len(benign)) {
		t.Errorf("hold-out false positives %d/%d are above 5%%", flagged, len(benign))
	}
}
