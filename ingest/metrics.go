package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rows           *prometheus.CounterVec
	failures       *prometheus.CounterVec
	batchSize      prometheus.Histogram
	insertDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_ingest_rows_total",
			Help: "Rows inserted into ClickHouse by table.",
		}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_ingest_failures_total",
			Help: "Ingest failures by reason: invalid (event terminated), insert (batch redelivered).",
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
	reg.MustRegister(m.rows, m.failures, m.batchSize, m.insertDuration)
	return m
}
