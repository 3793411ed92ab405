package chdb

import (
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	sql := "-- comment;\nCREATE TABLE a (x String);\n\n-- only a comment\nCREATE TABLE b (\n  y String -- no; split here\n);\n"
	got := splitStatements(sql)
	if len(got) != 2 || !strings.HasPrefix(got[0], "-- comment;\nCREATE TABLE a") || !strings.Contains(got[1], "y String -- no; split here") {
		t.Errorf("splitStatements() = %q", got)
	}
}
