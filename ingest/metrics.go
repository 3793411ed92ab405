package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events     prometheus.Counter
	duplicates prometheus.Counter
	// pendingMessages and ackPendingMessages count JetStream messages
	// (one event, or a batch message of up to eventv1.MaxBatchEvents).
	// pendingEvents and ackPendingEvents are their deprecated names, kept
	// for one release with the same values: set them through setPending.
	pendingMessages    prometheus.Gauge
	ackPendingMessages prometheus.Gauge
	pendingEvents      prometheus.Gauge
	ackPendingEvents   prometheus.Gauge
	lag                prometheus.Gauge
	rows               *prometheus.CounterVec
	failures           *prometheus.CounterVec
	batchSize          prometheus.Histogram
	insertDuration     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abacus_ingest_events_total",
			Help: "Events stored in ClickHouse.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abacus_ingest_redelivered_duplicates_total",
			Help: "Redelivered events found already stored and acknowledged without a second insert.",
		}),
		pendingMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abacus_ingest_pending_messages",
			Help: "Messages (one event, or a batch of up to 1000) in the stream not yet delivered to ingest.",
		}),
		ackPendingMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abacus_ingest_ack_pending_messages",
			Help: "Messages (one event, or a batch of up to 1000) delivered to ingest but not yet acknowledged.",
		}),
		pendingEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abacus_ingest_pending_events",
			Help: "Deprecated: use abacus_ingest_pending_messages (the same value: it counts messages, not events).",
		}),
		ackPendingEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abacus_ingest_ack_pending_events",
			Help: "Deprecated: use abacus_ingest_ack_pending_messages (the same value: it counts messages, not events).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abacus_ingest_lag_seconds",
			Help: "Age of the oldest message not yet acknowledged (0 when ingest is caught up).",
		}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_ingest_rows_total",
			Help: "Rows inserted into ClickHouse by table.",
		}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_ingest_failures_total",
			Help: "Ingest failures by reason: invalid (event dead-lettered), insert (batch redelivered).",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abacus_ingest_batch_events",
			Help:    "Events per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		insertDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abacus_ingest_insert_duration_seconds",
			Help:    "Time to insert one batch into ClickHouse.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	reg.MustRegister(m.events, m.duplicates, m.pendingMessages, m.ackPendingMessages, m.pendingEvents, m.ackPendingEvents, m.lag, m.rows, m.failures, m.batchSize, m.insertDuration)
	return m
}

// setPending records the consumer's backlog in messages, under the current
// and the deprecated names.
func (m *metrics) setPending(pending uint64, ackPending int) {
	m.pendingMessages.Set(float64(pending))
	m.ackPendingMessages.Set(float64(ackPending))
	m.pendingEvents.Set(float64(pending))
	m.ackPendingEvents.Set(float64(ackPending))
}
