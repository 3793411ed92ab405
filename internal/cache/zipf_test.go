package cache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
)

// zipfTrace returns requests keys drawn from n keys with P(rank k) ∝
// 1/(k+1)^s, by inverting the CDF: math/rand/v2's Zipf needs s > 1, and the
// study also wants s = 0.9. The seed is fixed, so the trace is too.
func zipfTrace(s float64, n, requests int) []int32 {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += math.Pow(float64(k+1), -s)
		cdf[k] = sum
	}
	r := rand.New(rand.NewPCG(1, uint64(s*1000)))
	// Ranks map to keys through a fixed permutation, so that hot keys
	// are not also adjacent in bigcache's hash order by accident.
	perm := r.Perm(n)
	trace := make([]int32, requests)
	for i := range trace {
		k, _ := slices.BinarySearch(cdf, r.Float64()*sum)
		trace[i] = int32(perm[min(k, n-1)])
	}
	return trace
}

// replayer is a cache under study: get reports a hit; set stores.
type replayer struct {
	name string
	get  func(string) bool
	set  func(string, []byte)
	stop func()
}

func studyCaches(t testing.TB, capacity int) []replayer {
	l, err := newLayer("study", LayerConfig{TTL: time.Hour, MaxEntries: capacity, MaxMB: 8})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lru.New[string, []byte](capacity)
	if err != nil {
		t.Fatal(err)
	}
	oc := otter.Must(&otter.Options[string, []byte]{MaximumSize: capacity})
	return []replayer{
		{
			name: "bigcache (FIFO, entry cap)",
			get:  func(k string) bool { _, ok := l.get(k); return ok },
			set:  func(k string, v []byte) { _, _ = l.set(k, v, nil) },
			stop: func() { _ = l.big.Close() },
		},
		{
			name: "golang-lru/v2 (LRU)",
			get:  func(k string) bool { _, ok := lc.Get(k); return ok },
			set:  func(k string, v []byte) { lc.Add(k, v) },
			stop: func() {},
		},
		{
			name: "otter/v2 (W-TinyLFU)",
			get:  func(k string) bool { _, ok := oc.GetIfPresent(k); return ok },
			set:  func(k string, v []byte) { oc.Set(k, v) },
			stop: func() { oc.StopAllGoroutines() },
		},
	}
}

// replay runs trace through c (a miss sets the key) and returns the hit
// ratio over the second half of the trace, after warm-up.
func replay(c replayer, keys []string, trace []int32) float64 {
	value := make([]byte, 64)
	hits, counted := 0, 0
	for i, k := range trace {
		key := keys[k]
		hit := c.get(key)
		if !hit {
			c.set(key, value)
		}
		if i >= len(trace)/2 {
			counted++
			if hit {
				hits++
			}
		}
	}
	return float64(hits) / float64(counted)
}

// TestZipfHitRatios replays Zipf traces against bigcache with the entry
// cap (a layer), LRU and otter, and logs the table recorded in doc.go:
// go test -run ZipfHitRatios -v. The full trace (1M requests over 100k
// keys) takes a few seconds; under the race detector it is cut to 50k
// requests over 10k keys.
func TestZipfHitRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("replays millions of requests")
	}
	nKeys, requests := 100_000, 1_000_000
	if raceEnabled {
		nKeys, requests = 10_000, 50_000
	}
	keys := make([]string, nKeys)
	for i := range keys {
		keys[i] = "test:" + strconv.Itoa(i)
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%d requests over %d keys, hit ratio of the second half:\n", requests, nKeys)
	fmt.Fprintf(&table, "| s | capacity | %s |\n", strings.Join([]string{"bigcache (FIFO, entry cap)", "golang-lru/v2 (LRU)", "otter/v2 (W-TinyLFU)"}, " | "))
	for _, s := range []float64{1.1, 0.9} {
		trace := zipfTrace(s, nKeys, requests)
		for _, pct := range []int{1, 5, 10} {
			capacity := nKeys * pct / 100
			fmt.Fprintf(&table, "| %.1f | %d%% (%d) |", s, pct, capacity)
			ratios := map[string]float64{}
			for _, c := range studyCaches(t, capacity) {
				r := replay(c, keys, trace)
				c.stop()
				ratios[c.name] = r
				fmt.Fprintf(&table, " %.3f |", r)
				// Any cache beats holding a random capacity/n of the keys
				// on a skewed trace.
				if base := float64(capacity) / float64(nKeys); r <= base {
					t.Errorf("s=%.1f cap %d%%: %s hit ratio %.3f, not above the no-locality %.3f", s, pct, c.name, r, base)
				}
			}
			table.WriteByte('\n')
			// FIFO never beats LRU by much on Zipf; a big gap either way
			// means the replay is broken.
			if d := ratios["bigcache (FIFO, entry cap)"] - ratios["golang-lru/v2 (LRU)"]; d > 0.02 || d < -0.2 {
				t.Errorf("s=%.1f cap %d%%: FIFO minus LRU = %.3f, want within [-0.2, 0.02]", s, pct, d)
			}
		}
	}
	t.Log("\n" + table.String())
}
