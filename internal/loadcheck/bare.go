package loadcheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// BareBatchRows is the batch size of Scratch.Insert: about what one ingest
// insert holds (INGEST_BATCH_SIZE events of two metrics).
const BareBatchRows = 10_000

// Scratch is a table with the results table's layout, made for one bare
// insert measurement and dropped afterwards.
type Scratch struct {
	conn driver.Conn
	// Table is the scratch table's name.
	Table string
}

// NewScratch creates a fresh scratch copy of the results table. The caller
// drops it with Drop.
func NewScratch(ctx context.Context, conn driver.Conn) (*Scratch, error) {
	table := "loadgen_bare_insert_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return nil, fmt.Errorf("bare insert: %w", err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE "+table+" AS results"); err != nil {
		return nil, fmt.Errorf("bare insert: %w", err)
	}
	return &Scratch{conn: conn, Table: table}, nil
}

// Drop drops the scratch table.
func (s *Scratch) Drop(ctx context.Context) error {
	return s.conn.Exec(ctx, "DROP TABLE IF EXISTS "+s.Table)
}

// Insert is the yardstick of end-to-end ingestion: a plain clickhouse-go
// batch insert loop, column by column, of result rows shaped like the load
// generator's, in batches of BareBatchRows on one connection. It inserts at
// least rows rows and runs at least as long as the end-to-end run took
// (minTime), so that both rates are sustained over the same time and pay
// for ClickHouse's background merges alike: a short burst into an empty
// table is much faster. It returns rows per second, the rows inserted and
// the time taken.
func (s *Scratch) Insert(ctx context.Context, rows uint64, minTime time.Duration) (float64, uint64, time.Duration, error) {
	if rows == 0 {
		return 0, 0, 0, nil
	}
	batches := bareBatches(rows, uuid.NewString(), time.Now().UTC())
	start := time.Now()
	var inserted uint64
	for i := 0; inserted < rows || time.Since(start) < minTime; i++ {
		c := batches[i%len(batches)]
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.Table+" (test_id, variant_id, user_id, metric, value, event_id, event_time, stream_seq)")
		if err != nil {
			return 0, 0, 0, fmt.Errorf("bare insert: %w", err)
		}
		for i, col := range []any{c.test, c.variant, c.user, c.metric, c.value, c.event, c.at, c.seq} {
			if err := b.Column(i).Append(col); err != nil {
				_ = b.Abort()
				return 0, 0, 0, fmt.Errorf("bare insert: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			return 0, 0, 0, fmt.Errorf("bare insert: %w", err)
		}
		inserted += uint64(len(c.test))
	}
	took := time.Since(start)
	return float64(inserted) / took.Seconds(), inserted, took, nil
}

// columns is one batch of result rows, column by column.
type columns struct {
	test, variant, user, metric, event []string
	value                              []float64
	at                                 []time.Time
	seq                                []uint64
}

// bareBatches builds the batches first, so that the insert loop measures
// ClickHouse and the driver alone.
func bareBatches(rows uint64, testID string, now time.Time) []columns {
	rng := rand.New(rand.NewPCG(7, 7))
	var batches []columns
	for done := uint64(0); done < rows; {
		n := min(BareBatchRows, rows-done)
		var c columns
		for i := range n {
			k := done + i
			c.test = append(c.test, testID)
			c.variant = append(c.variant, []string{"control", "treatment"}[k/2%2])
			c.user = append(c.user, fmt.Sprintf("user-%d", rng.IntN(100_000)))
			c.metric = append(c.metric, []string{"revenue", "conversion"}[k%2])
			c.value = append(c.value, rng.NormFloat64())
			c.event = append(c.event, fmt.Sprintf("%s-%d", testID[:8], k/2))
			c.at = append(c.at, now)
			c.seq = append(c.seq, k/2)
		}
		batches = append(batches, c)
		done += n
	}
	return batches
}
