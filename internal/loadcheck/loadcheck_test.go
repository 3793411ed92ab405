package loadcheck

import (
	"strings"
	"testing"

	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// TestScratch inserts into a scratch table and checks that its rows are
// counted like result rows, then that Drop removes the table.
func TestScratch(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	ctx := t.Context()
	s, err := NewScratch(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	const rows = BareBatchRows + 10 // two batches, the second short
	rate, inserted, took, err := s.Insert(ctx, rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	if inserted != rows || took <= 0 || rate <= 0 {
		t.Errorf("Insert(%d) = %v rows/s, %d rows in %v; want %d rows", rows, rate, inserted, took, rows)
	}
	var n, events uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+s.Table).Scan(&n, &events); err != nil {
		t.Fatal(err)
	}
	if n != rows || events != (rows+1)/2 {
		t.Errorf("%s holds %d rows of %d events, want %d of %d", s.Table, n, events, rows, (rows+1)/2)
	}
	if err := s.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", s.Table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%s still exists after Drop", s.Table)
	}
}

// TestCounts checks the three counts of one test: two users assigned, and
// three result events of two metrics, one of them stored twice (a repeat
// delivery), next to another test's rows that must not count.
func TestCounts(t *testing.T) {
	conn, _ := chdbtest.Conn(t)
	ctx := t.Context()
	const test, other = "t1", "t2"
	// Plain INSERT ... VALUES waits forever on the native protocol; a
	// SELECT is sent as a query.
	insert := func(table, cols string, rows ...string) {
		t.Helper()
		q := "INSERT INTO " + table + " (" + cols + ") SELECT " + strings.Join(rows, " UNION ALL SELECT ")
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	insert("assignments", "test_id, variant_id, user_id, event_id, event_time, stream_seq",
		"'t1', 'a', 'u1', 'a1', now(), 1", "'t1', 'b', 'u2', 'a2', now(), 2", "'t1', 'b', 'u2', 'a2', now(), 3",
		"'t2', 'a', 'u3', 'a3', now(), 4")
	insert("results", "test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq",
		"'t1', 'a', 'u1', 'm', 1, 'r1', now(), 5", "'t1', 'a', 'u1', 'n', 1, 'r1', now(), 5",
		"'t1', 'b', 'u2', 'm', 1, 'r2', now(), 6", "'t1', 'b', 'u2', 'n', 1, 'r2', now(), 6",
		"'t1', 'b', 'u2', 'm', 1, 'r2', now(), 7", "'t1', 'b', 'u2', 'n', 1, 'r2', now(), 7",
		"'t1', 'a', 'u1', 'm', 1, 'r3', now(), 8", "'t1', 'a', 'u1', 'n', 1, 'r3', now(), 8",
		"'t2', 'a', 'u3', 'm', 1, 'r4', now(), 9")
	tests := []struct {
		name string
		f    func() (uint64, error)
		want uint64
	}{
		{"ResultRows", func() (uint64, error) { return ResultRows(ctx, conn, test) }, 8},
		{"ResultEvents", func() (uint64, error) { return ResultEvents(ctx, conn, test) }, 3},
		{"AssignedUsers", func() (uint64, error) { return AssignedUsers(ctx, conn, test) }, 2},
		{"ResultRows of another test", func() (uint64, error) { return ResultRows(ctx, conn, other) }, 1},
		{"ResultEvents of no test", func() (uint64, error) { return ResultEvents(ctx, conn, "none") }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.f(); err != nil || got != tt.want {
				t.Errorf("%s = %d, %v; want %d, nil", tt.name, got, err, tt.want)
			}
		})
	}
}
