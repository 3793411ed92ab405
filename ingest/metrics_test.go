package ingest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPendingMetricsCountMessages checks the backlog gauges: the _messages
// names and their deprecated _events aliases carry the same values, and
// the aliases say what replaces them.
func TestPendingMetricsCountMessages(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.setPending(3, 2)
	for _, tt := range []struct {
		name string
		g    prometheus.Gauge
		want float64
	}{
		{"abacus_ingest_pending_messages", m.pendingMessages, 3},
		{"abacus_ingest_pending_events", m.pendingEvents, 3},
		{"abacus_ingest_ack_pending_messages", m.ackPendingMessages, 2},
		{"abacus_ingest_ack_pending_events", m.ackPendingEvents, 2},
	} {
		if got := testutil.ToFloat64(tt.g); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := map[string]string{}
	for _, f := range families {
		help[f.GetName()] = f.GetHelp()
	}
	for old, use := range map[string]string{
		"abacus_ingest_pending_events":     "abacus_ingest_pending_messages",
		"abacus_ingest_ack_pending_events": "abacus_ingest_ack_pending_messages",
	} {
		if h := help[old]; !strings.HasPrefix(h, "Deprecated: use "+use) {
			t.Errorf("help of %s = %q, want it to begin with %q", old, h, "Deprecated: use "+use)
		}
		if _, ok := help[use]; !ok {
			t.Errorf("%s is not registered", use)
		}
	}
}
