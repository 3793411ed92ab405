package cache

// keyRing is the FIFO of the keys set in a layer, for its entry cap. It
// holds no pointers per key (the slots are integers and the keys share one
// byte slice), so a large layer adds no work to the garbage collector:
// that is what bigcache itself is for.
type keyRing struct {
	slots []slot // circular; len is the layer's MaxEntries
	head  int    // oldest slot
	n     int    // slots in use
	// arena holds the keys of the slots in insertion order. Popping is
	// FIFO, so the popped keys are always arena[:dead]; base is the
	// logical offset of arena[0].
	arena []byte
	base  uint64
	dead  int
}

type slot struct {
	off uint64 // logical offset of the key in the arena
	len uint32
	seq uint64 // the Set that stored it
}

func newKeyRing(n int) *keyRing { return &keyRing{slots: make([]slot, n)} }

func (r *keyRing) full() bool { return r.n == len(r.slots) }

// push appends a key; the ring must not be full.
func (r *keyRing) push(key string, seq uint64) {
	r.slots[(r.head+r.n)%len(r.slots)] = slot{off: r.base + uint64(len(r.arena)), len: uint32(len(key)), seq: seq}
	r.n++
	r.arena = append(r.arena, key...)
}

// pop removes the oldest key. The returned bytes are valid until the next
// push.
func (r *keyRing) pop() ([]byte, uint64) {
	s := r.slots[r.head]
	r.head = (r.head + 1) % len(r.slots)
	r.n--
	i := int(s.off - r.base)
	key := r.arena[i : i+int(s.len)]
	r.dead += int(s.len)
	if r.dead > 4096 && r.dead > len(r.arena)/2 {
		// Drop the popped keys in place; the key being returned is among
		// them, so copy it out first.
		key = append([]byte(nil), key...)
		n := copy(r.arena, r.arena[r.dead:])
		r.arena = r.arena[:n]
		r.base += uint64(r.dead)
		r.dead = 0
	}
	return key, s.seq
}

func (r *keyRing) reset() {
	r.head, r.n = 0, 0
	r.base += uint64(len(r.arena))
	r.arena = r.arena[:0]
	r.dead = 0
	if cap(r.arena) > 1<<20 {
		r.arena = nil
	}
}
