// Package registry stores test definitions in a JetStream KV bucket and keeps
// a watched in-memory copy of them, so that every replica serves the same
// definitions, a change on one replica reaches the others within
// milliseconds, and a restart loses nothing.
//
// Writes are compare-and-set on the key's revision: two replicas starting and
// stopping the same test at once cannot overwrite each other.
//
// A test's optional key (its human-readable name for OpenFeature clients)
// is reserved in the same bucket, as the entry "key.KEY" whose value is the
// test id, created before the test: two replicas creating tests with one
// key at once cannot both succeed. A reservation whose test was never
// stored (a crash between the two writes) is taken over once it is older
// than a minute. Test ids are UUIDs, so no test id starts with "key.".
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/kvwatch"
)

// Store is the registry of test definitions. Its methods are safe for
// concurrent use. Tests it returns are shared: callers must not modify them.
type Store struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.RWMutex
	tests map[string]entry
	keys  map[string]string // test key -> test id

	ready *kvwatch.Ready
	now   func() time.Time // for the age of key reservations
	// gen counts the changes applied, for cache keys of derived values.
	gen atomic.Uint64
	// applied, set by tests before Run, is called after each change from
	// the watch is applied.
	applied func()
}

type entry struct {
	test *experiment.Test
	rev  uint64
}

// New returns a Store over kv. Call Run to keep it in sync.
func New(kv jetstream.KeyValue, log *slog.Logger) *Store {
	return &Store{kv: kv, log: log, tests: make(map[string]entry), keys: make(map[string]string), ready: kvwatch.NewReady("the test registry"), now: time.Now}
}

// Run watches the bucket and applies every change to the in-memory copy until
// ctx is done. It re-establishes the watch if it ends early. It returns nil
// after ctx is done and its watcher has stopped.
func (s *Store) Run(ctx context.Context) error {
	return kvwatch.Run(ctx, s.kv, s.log, s.apply, s.ready.Open)
}

// keyPrefix starts the bucket keys of test key reservations.
const keyPrefix = "key."

// orphanAge is how old a reservation whose test does not exist must be
// before another test takes it over: far longer than a Create takes, and
// than the clocks of a replica and the NATS server differ.
const orphanAge = time.Minute

func (s *Store) apply(e jetstream.KeyValueEntry) {
	if s.applied != nil {
		defer s.applied() // after the unlock
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := strings.CutPrefix(e.Key(), keyPrefix); ok {
		switch e.Operation() {
		case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
			delete(s.keys, k)
		default:
			s.keys[k] = string(e.Value())
		}
		s.gen.Add(1)
		return
	}
	cur, ok := s.tests[e.Key()]
	if ok && cur.rev >= e.Revision() {
		return
	}
	defer s.gen.Add(1)
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(s.tests, e.Key())
		return
	}
	var t experiment.Test
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		s.log.Error("skipping undecodable test definition", "test_id", e.Key(), "err", err)
		return
	}
	s.tests[e.Key()] = entry{test: &t, rev: e.Revision()}
}

// Generation changes whenever the registry applies a change: a value
// derived from the registry (a rendered list) and cached under a key that
// includes the generation is never served after the change reaches this
// replica.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// WaitReady blocks until the initial contents of the bucket are loaded.
func (s *Store) WaitReady(ctx context.Context) error { return s.ready.Wait(ctx) }

// Ready reports whether the initial contents are loaded.
func (s *Store) Ready() bool { return s.ready.IsOpen() }

// Get returns the test with id. It serves from memory and falls back to the
// bucket for an id it has not seen yet (a test created on another replica a
// moment ago).
func (s *Store) Get(ctx context.Context, id string) (*experiment.Test, error) {
	s.mu.RLock()
	e, ok := s.tests[id]
	s.mu.RUnlock()
	if ok {
		return e.test, nil
	}
	if !experiment.ValidID(id) || strings.HasPrefix(id, keyPrefix) {
		return nil, experiment.ErrNotFound
	}
	kve, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		// An id that cannot be a KV key (a client's "a+b") names no test.
		return nil, experiment.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading test %s: %w", id, err)
	}
	s.apply(kve)
	s.mu.RLock()
	e, ok = s.tests[id]
	s.mu.RUnlock()
	if !ok {
		return nil, experiment.ErrNotFound
	}
	return e.test, nil
}

// ByKey returns the test whose key is key. Like Get, it falls back to the
// bucket for a key it has not seen yet.
func (s *Store) ByKey(ctx context.Context, key string) (*experiment.Test, error) {
	s.mu.RLock()
	id, ok := s.keys[key]
	s.mu.RUnlock()
	if ok {
		if t, err := s.Get(ctx, id); err == nil && t.Key == key {
			return t, nil
		}
		// The watch may not have applied a takeover of the key yet.
	}
	if !experiment.ValidKey(key) {
		return nil, experiment.ErrNotFound
	}
	kve, err := s.kv.Get(ctx, keyPrefix+key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, experiment.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading test key %s: %w", key, err)
	}
	s.apply(kve)
	t, err := s.Get(ctx, string(kve.Value()))
	if err != nil || t.Key != key {
		// A reservation whose test was never stored (a crash between the
		// two writes) names no test.
		return nil, experiment.ErrNotFound
	}
	return t, nil
}

// KeyTakenError reports that another test holds the key a new test asks for.
type KeyTakenError struct {
	Key, Holder string // the key and the id of the test that holds it
}

func (e *KeyTakenError) Error() string {
	return fmt.Sprintf("key %s is taken by test %s", e.Key, e.Holder)
}

// reserveKey reserves t.Key for t. A reservation left by a test that was
// never stored is taken over, with compare-and-set.
func (s *Store) reserveKey(ctx context.Context, t *experiment.Test) error {
	_, err := s.kv.Create(ctx, keyPrefix+t.Key, []byte(t.ID))
	if err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		if err != nil {
			return fmt.Errorf("reserving key %s: %w", t.Key, err)
		}
		return nil
	}
	kve, err := s.kv.Get(ctx, keyPrefix+t.Key)
	if err != nil {
		return fmt.Errorf("reading key %s: %w", t.Key, err)
	}
	holder := string(kve.Value())
	if _, err := s.Get(ctx, holder); !errors.Is(err, experiment.ErrNotFound) {
		if err != nil {
			return err
		}
		return &KeyTakenError{Key: t.Key, Holder: holder}
	}
	if s.now().Sub(kve.Created()) < orphanAge {
		// The holder may be storing its test right now.
		return &KeyTakenError{Key: t.Key, Holder: holder}
	}
	if _, err := s.kv.Update(ctx, keyPrefix+t.Key, []byte(t.ID), kve.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return s.reserveKey(ctx, t)
		}
		return fmt.Errorf("reserving key %s: %w", t.Key, err)
	}
	return nil
}

// List returns every test, newest first.
func (s *Store) List() []*experiment.Test {
	s.mu.RLock()
	out := make([]*experiment.Test, 0, len(s.tests))
	for _, e := range s.tests {
		out = append(out, e.test)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Create stores a new test. It fails if the id exists, and with a
// *KeyTakenError if another test holds its key.
func (s *Store) Create(ctx context.Context, t *experiment.Test) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding test %s: %w", t.ID, err)
	}
	if t.Key != "" {
		if err := s.reserveKey(ctx, t); err != nil {
			return err
		}
	}
	rev, err := s.kv.Create(ctx, t.ID, data)
	if err != nil {
		if t.Key != "" {
			// Best effort: a reservation left behind is taken over by
			// the next test that asks for the key.
			_ = s.kv.Delete(context.WithoutCancel(ctx), keyPrefix+t.Key)
		}
		return fmt.Errorf("storing test %s: %w", t.ID, err)
	}
	s.put(t, rev)
	if t.Key != "" {
		s.mu.Lock()
		s.keys[t.Key] = t.ID
		s.mu.Unlock()
	}
	return nil
}

// Update applies fn to the stored test and writes the result with
// compare-and-set, retrying when another writer got there first. fn receives
// a private copy and may return an error to abort.
func (s *Store) Update(ctx context.Context, id string, fn func(*experiment.Test) error) (*experiment.Test, error) {
	if !experiment.ValidID(id) {
		return nil, experiment.ErrNotFound
	}
	for attempt := 0; ; attempt++ {
		kve, err := s.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, experiment.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("reading test %s: %w", id, err)
		}
		var t experiment.Test
		if err := json.Unmarshal(kve.Value(), &t); err != nil {
			return nil, fmt.Errorf("decoding test %s: %w", id, err)
		}
		if err := fn(&t); err != nil {
			return nil, err
		}
		data, err := json.Marshal(&t)
		if err != nil {
			return nil, fmt.Errorf("encoding test %s: %w", id, err)
		}
		rev, err := s.kv.Update(ctx, id, data, kve.Revision())
		if err == nil {
			s.put(&t, rev)
			return &t, nil
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 10 {
			continue
		}
		return nil, fmt.Errorf("updating test %s: %w", id, err)
	}
}

func (s *Store) put(t *experiment.Test, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.tests[t.ID]; ok && cur.rev >= rev {
		return
	}
	s.tests[t.ID] = entry{test: t, rev: rev}
	// A value derived under the old generation must not outlive this
	// replica's own write, which its watch applies only later.
	s.gen.Add(1)
}
