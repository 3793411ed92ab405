package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/abacus-ab/abacus/internal/auth"
	"github.com/abacus-ab/abacus/internal/chdb/chdbtest"
)

// TestShutdownOrder checks, from the JSON log lines of a real serve
// process, that SIGTERM first fails /readyz and then stops the roles one at
// a time, api, ingest, analyzer, each with its own pair of lines.
func TestShutdownOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	ch := chdbtest.Database(t)
	admin, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startServe(t, []string{
		"ENVIRONMENT=production", // JSON logs
		"API_KEY=" + admin,
		"ABACUS_HTTP_ADDR=" + addr,
		"DATA_DIR=" + t.TempDir(),
		"CLICKHOUSE_URL=" + fmt.Sprintf("clickhouse://%s/%s", ch.Addr[0], ch.Auth.Database),
		"ANALYSIS_INTERVAL=1h",
		"NATS_URL=",
	})
	(&client{t: t, base: "http://" + addr}).waitReady(p)
	p.stop(t)

	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Component string `json:"component"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			msgs = append(msgs, line.Component+": "+line.Msg)
		}
	}
	// serve's own lines have no component; the roles' have theirs (the
	// analyzer logs "analyzer stopped" too).
	want := []string{
		": stopping api",
		"api: http server shutting down: readiness failed, draining requests",
		"api: http server stopped",
		": api stopped",
		": stopping ingest",
		": ingest stopped",
		": stopping analyzer",
		": analyzer stopped",
		": abacus stopped",
	}
	last := -1
	for _, w := range want {
		i := slices.Index(msgs, w)
		switch {
		case i < 0:
			t.Errorf("no log line %q", w)
		case i < last:
			t.Errorf("log line %q comes before %q, want after", w, msgs[last])
		default:
			last = i
		}
	}
}
