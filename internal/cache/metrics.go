package cache

import "github.com/prometheus/client_golang/prometheus"

var (
	descHits = prometheus.NewDesc("abacus_cache_hits_total",
		"Cache reads that found a live entry.", []string{"layer"}, nil)
	descMisses = prometheus.NewDesc("abacus_cache_misses_total",
		"Cache reads that found no live entry.", []string{"layer"}, nil)
	descEvictions = prometheus.NewDesc("abacus_cache_evictions_total",
		"Entries removed to make room for new ones (entry or size cap).", []string{"layer"}, nil)
	descExpirations = prometheus.NewDesc("abacus_cache_expirations_total",
		"Entries removed by the TTL cleanup.", []string{"layer"}, nil)
	descInvalidations = prometheus.NewDesc("abacus_cache_invalidations_total",
		"Invalidations applied (one key, one layer or all; local or from another replica).", []string{"layer"}, nil)
	descEntries = prometheus.NewDesc("abacus_cache_entries",
		"Entries in the cache, expired ones not yet cleaned up included.", []string{"layer"}, nil)
	descSize = prometheus.NewDesc("abacus_cache_size_bytes",
		"Memory held by the cache's byte queues.", []string{"layer"}, nil)
	descMaxSize = prometheus.NewDesc("abacus_cache_max_size_bytes",
		"Configured cap of abacus_cache_size_bytes.", []string{"layer"}, nil)
)

// Cache is a prometheus.Collector of the layers' statistics: register it
// with reg.MustRegister(c).
var _ prometheus.Collector = (*Cache)(nil)

// Describe sends the descriptors of the cache's metrics.
func (c *Cache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descEvictions, descExpirations,
		descInvalidations, descEntries, descSize, descMaxSize} {
		ch <- d
	}
}

// Collect sends the current statistics of every layer.
func (c *Cache) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.Stats() {
		if s.Disabled {
			continue
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter(descHits, s.Hits)
		counter(descMisses, s.Misses)
		counter(descEvictions, s.Evictions)
		counter(descExpirations, s.Expirations)
		counter(descInvalidations, s.Invalidations)
		gauge(descEntries, float64(s.Entries))
		gauge(descSize, float64(s.SizeBytes))
		gauge(descMaxSize, float64(s.MaxMB<<20))
	}
}
