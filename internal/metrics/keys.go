package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// KeyInfo describes one signing key for the key gauges.
type KeyInfo struct {
	// ID is the key id (key_id label); Source is its backend, the key URI
	// scheme (key_source label).
	ID, Source string
	// Created is when the key was made; zero leaves the key out of
	// signer_key_age_seconds.
	Created time.Time
	// NotAfter is the end of the key's validity window; zero (no end)
	// leaves the key out of signer_key_not_after_timestamp_seconds.
	NotAfter time.Time
}

// keyCollector exports the key gauges from a key set replaced whole by
// SetKeyInfo. The age is computed when scraped, so it never goes stale
// between reloads.
type keyCollector struct {
	now      func() time.Time
	keys     atomic.Pointer[[]KeyInfo]
	age      *prometheus.Desc
	notAfter *prometheus.Desc
}

func newKeyCollector(now func() time.Time) *keyCollector {
	return &keyCollector{
		now: now,
		age: prometheus.NewDesc("signer_key_age_seconds",
			"Seconds since the key was created, by key id and key source.",
			[]string{"key_id", "key_source"}, nil),
		notAfter: prometheus.NewDesc("signer_key_not_after_timestamp_seconds",
			"End of the key's validity window, Unix seconds, by key id.",
			[]string{"key_id"}, nil),
	}
}

// set replaces the key set. Repeated ids are dropped after the first, so a
// scrape never holds duplicate series.
func (c *keyCollector) set(keys []KeyInfo) {
	out := make([]KeyInfo, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		k.Source = orNone(k.Source)
		out = append(out, k)
	}
	c.keys.Store(&out)
}

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.age
	ch <- c.notAfter
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	keys := c.keys.Load()
	if keys == nil {
		return
	}
	now := c.now()
	for _, k := range *keys {
		if !k.Created.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue,
				now.Sub(k.Created).Seconds(), k.ID, k.Source)
		}
		if !k.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.notAfter, prometheus.GaugeValue,
				float64(k.NotAfter.UnixNano())/1e9, k.ID)
		}
	}
}
