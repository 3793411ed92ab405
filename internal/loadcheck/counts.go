package loadcheck

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ResultRows returns the number of result rows of the test (one per metric
// of each result event, repeats included).
func ResultRows(ctx context.Context, conn driver.Conn, testID string) (uint64, error) {
	return count(ctx, conn, "SELECT count() FROM results WHERE test_id = ?", testID)
}

// ResultEvents returns the number of distinct result events of the test.
func ResultEvents(ctx context.Context, conn driver.Conn, testID string) (uint64, error) {
	return count(ctx, conn, "SELECT uniqExact(event_id) FROM results WHERE test_id = ?", testID)
}

// AssignedUsers returns the number of distinct users assigned in the test.
func AssignedUsers(ctx context.Context, conn driver.Conn, testID string) (uint64, error) {
	return count(ctx, conn, "SELECT uniqExact(user_id) FROM assignments WHERE test_id = ?", testID)
}

func count(ctx context.Context, conn driver.Conn, query, testID string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, query, testID).Scan(&n)
	return n, err
}
