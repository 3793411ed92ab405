package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/internal/chdb"
)

// TestKillDuringLoad sends batches of events while the serving process is
// killed with SIGKILL three times (and restarted on the same data). Clients
// retry every batch that was not wholly acknowledged, unchanged, as the API
// asks. In the end ClickHouse must hold every acknowledged event exactly
// once: no loss, no duplicate row.
func TestKillDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test skipped in -short mode")
	}
	srv := startDev(t,
		"INGEST_BATCH_SIZE=500",
		"INGEST_ACK_WAIT=4s",
		"INGEST_INSERT_TIMEOUT=2s",
		// The batch path does not need it, and this runs the server with
		// validation off (its configuration path had a nil-interface bug).
		"INPUT_VALIDATION_ENABLED=false",
	)
	p, c, chOpts, env := srv.proc, srv.client, srv.ch, srv.env
	testID := c.runningAB("kill test")

	// The loader: batches of 200 result events with client event ids. A
	// batch is retried unchanged until every event is acknowledged, as the
	// API asks of clients: the same body makes the same JetStream messages,
	// which JetStream recognises as duplicates, so the raw rows must match
	// exactly.
	const total = 20000
	var mu sync.Mutex
	acked := map[string]bool{}
	pending := make([]string, 0, total)
	for i := range total {
		pending = append(pending, fmt.Sprintf("ev-%06d", i))
	}
	stop := make(chan struct{})
	loaderDone := make(chan struct{})
	// batchAcked gets a value for every batch acknowledged in full: the
	// kills below wait on it, so that each lands while the loader is
	// sending to (and ingest is consuming from) the process it kills.
	batchAcked := make(chan struct{}, total)
	go func() {
		defer close(loaderDone)
		hc := &http.Client{Timeout: 10 * time.Second}
		for {
			mu.Lock()
			if len(pending) == 0 {
				mu.Unlock()
				return
			}
			n := min(200, len(pending))
			ids := append([]string(nil), pending[:n]...)
			mu.Unlock()
			var events []string
			for _, id := range ids {
				events = append(events, fmt.Sprintf(`{"type":"result","test_id":%q,"user_id":"u-%s","metrics":{"m":1,"k":2},"event_id":%q}`,
					testID, id[len(id)-3:], id))
			}
			var resp struct {
				Results []struct {
					Status  string `json:"status"`
					EventID string `json:"event_id"`
				} `json:"results"`
			}
			r, err := hc.Post(c.base+"/api/ab-testing/events", "application/json", bytes.NewBufferString("["+strings.Join(events, ",")+"]"))
			ok := err == nil
			if ok {
				ok = json.NewDecoder(r.Body).Decode(&resp) == nil && len(resp.Results) == len(ids)
				r.Body.Close()
			}
			for i := range ids {
				ok = ok && resp.Results[i].Status == "accepted"
			}
			if ok {
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				pending = pending[n:]
				mu.Unlock()
				batchAcked <- struct{}{}
			}
			if !ok {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}()

	for kill := range 3 {
		// Kill after a few batches (1000 events and more each time) were
		// acknowledged by this process.
		for drained := false; !drained; {
			select {
			case <-batchAcked:
			default:
				drained = true
			}
		}
		for range 5 + 2*kill {
			select {
			case <-batchAcked:
			case <-loaderDone:
				t.Fatalf("the loader finished before kill %d: send more events", kill+1)
			}
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		p = startServe(t, env)
		c.waitReady(p)
	}
	select {
	case <-loaderDone:
	case <-time.After(3 * time.Minute):
		close(stop)
		t.Fatal("the loader did not get every event acknowledged within 3 minutes")
	}
	if len(acked) != total {
		t.Fatalf("acknowledged %d events, want %d", len(acked), total)
	}

	conn, err := chdb.Open(t.Context(), chOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rows, distinct uint64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM results WHERE test_id = ?", testID).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if distinct >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Wait until ingest reports nothing pending and nothing unacknowledged
	// in a snapshot taken after every event was visible: redeliveries of
	// batches whose acks died with a process have then been handled, and
	// must not have added rows.
	c.waitIngestIdle(time.Now(), time.Minute)
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM results WHERE test_id = ?", testID).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != total {
		t.Errorf("ClickHouse holds %d distinct events, want %d acknowledged ones", distinct, total)
	}
	if rows != 2*total {
		t.Errorf("ClickHouse holds %d rows, want exactly %d (two metrics per event, no duplicates)", rows, 2*total)
	}
	p.stop(t)
}
