package provider

import (
	"hash/maphash"
	"sync"
)

// pairSet remembers about limit recently exposed (test, user) pairs. Each
// of its shards holds two generations: a pair is found in either, is added
// to the current one, and when the current one is full it becomes the
// previous one and the oldest pairs are forgotten. A lookup allocates
// nothing.
type pairSet struct {
	seed     maphash.Seed
	shards   [pairShards]pairShard
	perShard int
}

const pairShards = 64

type pair struct{ test, user string }

type pairShard struct {
	mu        sync.Mutex
	cur, prev map[pair]struct{}
	_         [40]byte // keeps shards on separate cache lines
}

func newPairSet(limit int) *pairSet {
	s := &pairSet{seed: maphash.MakeSeed(), perShard: max(1, limit/(2*pairShards))}
	for i := range s.shards {
		s.shards[i].cur = make(map[pair]struct{})
	}
	return s
}

func (s *pairSet) shard(k pair) *pairShard {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(k.test)
	h.WriteByte(0)
	h.WriteString(k.user)
	return &s.shards[h.Sum64()%pairShards]
}

// add records k and reports whether it was new.
func (s *pairSet) add(k pair) bool {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.cur[k]; ok {
		return false
	}
	if _, ok := sh.prev[k]; ok {
		return false
	}
	if len(sh.cur) >= s.perShard {
		sh.prev, sh.cur = sh.cur, make(map[pair]struct{}, s.perShard)
	}
	sh.cur[k] = struct{}{}
	return true
}

// forget removes k, so that its exposure is sent again (after a drop).
func (s *pairSet) forget(k pair) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.cur, k)
	delete(sh.prev, k)
}
