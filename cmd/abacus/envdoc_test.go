package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration table of README.md from envDoc")

const (
	readmePath     = "../../README.md"
	envTableBegin  = "<!-- env table begin: generated from envDoc (cmd/abacus/config.go); go test ./cmd/abacus -run TestREADMEEnvTable -update -->\n"
	envTableEnd    = "<!-- env table end -->\n"
	envTableHeader = "| Variable | Default | Meaning |\n|---|---|---|\n"
)

// envTable renders envDoc as the Markdown table of README.md.
func envTable() string {
	var b strings.Builder
	b.WriteString(envTableHeader)
	for _, d := range envDoc {
		def := "*(empty)*"
		if d[1] != "" {
			def = "`" + d[1] + "`"
		}
		b.WriteString("| `" + d[0] + "` | " + def + " | " + d[2] + " |\n")
	}
	return b.String()
}

// TestREADMEEnvTable fails when the configuration table of README.md is
// not what envDoc, the table serve --help prints, renders to: the two
// cannot drift apart silently. With -update it rewrites the README's table.
func TestREADMEEnvTable(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(raw, []byte(envTableBegin))
	if !ok {
		t.Fatalf("%s has no line %q", readmePath, envTableBegin)
	}
	got, after, ok := bytes.Cut(rest, []byte(envTableEnd))
	if !ok {
		t.Fatalf("%s has no line %q after the table", readmePath, envTableEnd)
	}
	want := envTable()
	if string(got) == want {
		return
	}
	if *update {
		out := string(before) + envTableBegin + want + envTableEnd + string(after)
		if err := os.WriteFile(readmePath, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Errorf("README.md configuration table, line %d:\n got: %s\nwant: %s", i+1, g, w)
		}
	}
	t.Errorf("README.md's configuration table differs from envDoc: run go test ./cmd/abacus -run TestREADMEEnvTable -update and commit")
}

// TestHelpListsEnvDoc checks that serve --help prints every row of envDoc.
func TestHelpListsEnvDoc(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := loadConfig([]string{"--help"}, envFrom(nil), &stderr); err != flag.ErrHelp {
		t.Fatalf("loadConfig(--help) = %v, want flag.ErrHelp", err)
	}
	for _, d := range envDoc {
		if !strings.Contains(stderr.String(), d[0]+" ") || !strings.Contains(stderr.String(), d[2]) {
			t.Errorf("serve --help does not list %s with its meaning", d[0])
		}
	}
}
