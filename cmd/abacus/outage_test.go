package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/internal/chdb"
)

// privateClickHouse starts a ClickHouse server of this test's own with
// deploy/local/clickhouse.sh, so that the test can stop and start it without
// disturbing the server other tests share. It returns the native address and
// a function that runs the script with start or stop.
func privateClickHouse(t *testing.T) (addr string, ctl func(string)) {
	t.Helper()
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if _, err := os.Stat("/usr/sbin/clickhouse-server"); err != nil {
			if os.Getenv("ABACUS_REQUIRE_CLICKHOUSE") == "1" {
				t.Fatal("clickhouse-server is not installed (make test installs it)")
			}
			t.Skip("clickhouse-server is not installed")
		}
	}
	port := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	tcp, httpPort := port(), port()
	script, err := filepath.Abs("../../deploy/local/clickhouse.sh")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DATA_DIR="+t.TempDir(), "CLICKHOUSE_TCP_PORT="+tcp, "CLICKHOUSE_HTTP_PORT="+httpPort)
	ctl = func(action string) {
		t.Helper()
		cmd := exec.Command("bash", script, action)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clickhouse.sh %s: %v\n%s", action, err, out)
		}
	}
	ctl("start")
	t.Cleanup(func() { ctl("stop") })
	return "127.0.0.1:" + tcp, ctl
}

// TestClickHouseOutage stops ClickHouse for 20 seconds while events flow:
// the API keeps accepting (JetStream holds the events), ingest retries, and
// once ClickHouse is back every acknowledged event is stored exactly once.
func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test skipped in -short mode")
	}
	chAddr, ctl := privateClickHouse(t)
	addr := freeAddr(t)
	env := []string{
		"ENVIRONMENT=development",
		"ABACUS_HTTP_ADDR=" + addr,
		"DATA_DIR=" + t.TempDir(),
		"CLICKHOUSE_URL=clickhouse://" + chAddr + "/abacus?dial_timeout=1s",
		"INGEST_FLUSH_INTERVAL=20ms",
		"INGEST_ACK_WAIT=10s",
		"INGEST_INSERT_TIMEOUT=3s",
		"ANALYSIS_INTERVAL=1h",
		"NATS_URL=",
	}
	p := startServe(t, env)
	c := &client{t: t, base: "http://" + addr}
	c.waitReady(p)
	testID := c.runningAB("outage")

	sent := 0
	send := func(n int) {
		t.Helper()
		var events []string
		for range n {
			events = append(events, fmt.Sprintf(`{"type":"result","test_id":%q,"user_id":"u%d","metrics":{"m":%d},"event_id":"o-%d"}`,
				testID, sent%500, sent, sent))
			sent++
		}
		r, err := http.Post(c.base+"/api/ab-testing/events", "application/json", bytes.NewBufferString("["+strings.Join(events, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		var resp struct{ Accepted int }
		json.NewDecoder(r.Body).Decode(&resp)
		r.Body.Close()
		if r.StatusCode != 202 || resp.Accepted != n {
			t.Fatalf("batch during the test = %d accepted %d, want 202 with %d", r.StatusCode, resp.Accepted, n)
		}
	}
	send(1000)
	ctl("stop")
	outage := time.Now()
	for time.Since(outage) < 20*time.Second {
		send(500) // the API keeps accepting while ClickHouse is down
		time.Sleep(500 * time.Millisecond)
	}
	ctl("start")
	send(1000)

	opts, err := chdb.ParseURL("clickhouse://" + chAddr + "/abacus")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rows, distinct uint64
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(event_id) FROM results WHERE test_id = ?", testID).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if distinct >= uint64(sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if distinct != uint64(sent) || rows != uint64(sent) {
		t.Errorf("after the outage ClickHouse holds %d rows, %d distinct events; want exactly %d", rows, distinct, sent)
	}
	t.Logf("caught up %v after ClickHouse returned", time.Since(outage)-20*time.Second)
	p.stop(t)
}
