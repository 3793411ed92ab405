package cache

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestKeyRing checks the ring against a slice of strings through many
// wrap-arounds and arena compactions, with resets.
func TestKeyRing(t *testing.T) {
	for _, size := range []int{1, 3, 64} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			r := newKeyRing(size)
			type want struct {
				key string
				seq uint64
			}
			var oracle []want
			rng := rand.New(rand.NewPCG(1, uint64(size)))
			for i := range 20_000 {
				switch op := rng.IntN(100); {
				case op < 1:
					r.reset()
					oracle = oracle[:0]
				case op < 55 && !r.full():
					k := strings.Repeat("k", rng.IntN(300)) + strconv.Itoa(i)
					r.push(k, uint64(i))
					oracle = append(oracle, want{k, uint64(i)})
				case r.n > 0:
					k, seq := r.pop()
					if string(k) != oracle[0].key || seq != oracle[0].seq {
						t.Fatalf("op %d: pop() = %.20q, %d, want %.20q, %d", i, k, seq, oracle[0].key, oracle[0].seq)
					}
					oracle = oracle[1:]
				}
				if r.n != len(oracle) {
					t.Fatalf("op %d: %d slots, want %d", i, r.n, len(oracle))
				}
				if len(r.arena) > 2*size*320+8192 {
					t.Fatalf("op %d: arena of %d bytes for %d keys of at most 320 bytes", i, len(r.arena), size)
				}
			}
		})
	}
}
