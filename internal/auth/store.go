package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/kvwatch"
)

// Errors of Verify, each a reason to answer 401.
var (
	ErrUnknown = errors.New("unknown API key")
	ErrExpired = errors.New("API key expired")
	ErrRevoked = errors.New("API key revoked")
)

// Errors of the management methods.
var (
	// ErrNotFound reports that no key has the given id.
	ErrNotFound = errors.New("API key not found")
	// ErrConflict reports an action that the key's state forbids, such as
	// rotating a revoked key or revoking the API_KEY key.
	ErrConflict = errors.New("conflict with the API key's state")
)

// StaticKeyID is the id of the key configured by API_KEY.
const StaticKeyID = "key_env"

// Key is everything about an API key except its secret. Keys returned by the
// Store are shared or copies as documented; callers must not modify shared ones.
type Key struct {
	ID                  string     `json:"key_id"`
	Prefix              string     `json:"prefix"`
	Name                string     `json:"name,omitempty"`
	UserID              string     `json:"user_id"`
	Permissions         []string   `json:"permissions"`
	RateLimitMultiplier float64    `json:"rate_limit_multiplier"`
	CreatedAt           time.Time  `json:"created_at"`
	ExpiresAt           *time.Time `json:"expires_at,omitempty"`
	RevokedAt           *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt          *time.Time `json:"last_used_at,omitempty"`
	// RotatedFrom and RotatedTo link a key to its predecessor and successor.
	RotatedFrom string `json:"rotated_from,omitempty"`
	RotatedTo   string `json:"rotated_to,omitempty"`
	// Lineage is the id of the first key of a rotation chain (empty for a
	// key that was not rotated from another).
	Lineage string `json:"lineage,omitempty"`
	// Static marks the key configured by API_KEY: held in memory only, it
	// cannot be revoked or rotated through the store.
	Static bool `json:"static,omitempty"`
}

// LimitID identifies the key for rate limits: the first key of its
// rotation chain, so that rotating a key (or holding the old and the new
// key during the grace period) never yields a fresh budget.
func (k *Key) LimitID() string {
	if k.Lineage != "" {
		return k.Lineage
	}
	return k.ID
}

// Allows reports whether one of the key's patterns grants p.
func (k *Key) Allows(p Permission) bool {
	for _, pat := range k.Permissions {
		if Grants(pat, p) {
			return true
		}
	}
	return false
}

// Status is "revoked", "expired" or "active" at now.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// record is a key as stored in the bucket.
type record struct {
	Key
	// Hash is how Digest was computed: sha256 or hmac-sha256.
	Hash   string `json:"hash"`
	Digest string `json:"digest"` // hex
}

type entry struct {
	rec    record
	digest Digest
	rev    uint64
	// lastUsed is the last verification on this replica (unix ns), shared by
	// every revision of the key so that a watch update does not lose it.
	lastUsed *atomic.Int64
}

// Config configures a Store.
type Config struct {
	// Pepper, when set, makes digests HMAC-SHA256 keyed with it. Changing it
	// invalidates every stored key.
	Pepper []byte
	// StaticKey, when set, is an admin key ("*") accepted from memory (the
	// API_KEY environment variable). It is never written to the bucket.
	StaticKey string
	// RotationGrace is how long a rotated key keeps working by default.
	RotationGrace time.Duration
	// LastUsedInterval is how often last_used_at is written behind.
	LastUsedInterval time.Duration
	// Now is the clock that expiry and revocation are checked against
	// (default time.Now); tests move it instead of sleeping.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.RotationGrace == 0 {
		c.RotationGrace = 24 * time.Hour
	}
	if c.LastUsedInterval == 0 {
		c.LastUsedInterval = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if c.StaticKey != "" && ParseKey(c.StaticKey) != nil {
		return errors.New("API_KEY is not an Abacus key (rac_ followed by 49 letters and digits): generate one with `abacus keys generate`")
	}
	if c.RotationGrace < 0 || c.LastUsedInterval < 0 {
		return errors.New("rotation grace and last-used interval must not be negative")
	}
	return nil
}

// Store holds API keys in a JetStream KV bucket (keyed by key id) and a
// watched in-memory index by digest. Its methods are safe for concurrent use.
type Store struct {
	kv   jetstream.KeyValue
	cfg  Config
	hash hasher
	log  *slog.Logger
	now  func() time.Time

	mu       sync.RWMutex
	byDigest map[Digest]*entry
	byID     map[string]*entry

	ready *kvwatch.Ready

	// Set by tests before Run, in place of waiting: flushTicks drives the
	// last_used_at write-behind instead of a LastUsedInterval ticker, and
	// applied is called after each change from the watch is applied.
	flushTicks <-chan time.Time
	applied    func()
}

// NewStore returns a Store over kv. Call Run to load and watch the bucket.
func NewStore(kv jetstream.KeyValue, cfg Config, log *slog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		kv:       kv,
		cfg:      cfg,
		hash:     newHasher(cfg.Pepper),
		log:      log,
		now:      cfg.Now,
		byDigest: make(map[Digest]*entry),
		byID:     make(map[string]*entry),
		ready:    kvwatch.NewReady("the API keys"),
	}
	if cfg.StaticKey != "" {
		e := &entry{lastUsed: new(atomic.Int64), digest: s.hash.digest(cfg.StaticKey)}
		e.rec.Key = Key{
			ID: StaticKeyID, Prefix: DisplayPrefix(cfg.StaticKey), Name: "API_KEY environment variable",
			UserID: "admin", Permissions: []string{All}, RateLimitMultiplier: 1,
			CreatedAt: s.now().UTC().Truncate(time.Second), Static: true,
		}
		s.byDigest[e.digest] = e
		s.byID[StaticKeyID] = e
	}
	return s, nil
}

// Verify returns the key whose plaintext is raw, or ErrMalformed, ErrUnknown,
// ErrExpired or ErrRevoked. It computes one digest and does one map lookup,
// and does not allocate. The returned Key is shared: do not modify it.
func (s *Store) Verify(raw string) (*Key, error) {
	if err := ParseKey(raw); err != nil {
		return nil, err
	}
	d := s.hash.digest(raw)
	s.mu.RLock()
	e := s.byDigest[d]
	s.mu.RUnlock()
	// The map found the entry by digest; compare again in constant time so
	// that no step of the check branches early on secret-derived bytes.
	if e == nil || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		return nil, ErrUnknown
	}
	now := s.now()
	k := &e.rec.Key
	if k.RevokedAt != nil && !now.Before(*k.RevokedAt) {
		return nil, ErrRevoked
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, ErrExpired
	}
	// Written behind by Run; touch the shared word at most once a second.
	if n := now.UnixNano(); n-e.lastUsed.Load() > int64(time.Second) {
		e.lastUsed.Store(n)
	}
	return k, nil
}

// Run loads the bucket, applies every change to the in-memory index until
// ctx is done, and writes last_used_at behind every LastUsedInterval (and
// once more on the way out). It re-establishes the watch if it ends early,
// and returns nil after ctx is done and its goroutines have exited.
func (s *Store) Run(ctx context.Context) error {
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		s.flushLoop(ctx)
	}()
	defer func() { <-flushed }()
	return kvwatch.Run(ctx, s.kv, s.log, s.apply, s.ready.Open)
}

// WaitReady blocks until the initial contents of the bucket are loaded.
func (s *Store) WaitReady(ctx context.Context) error { return s.ready.Wait(ctx) }

// Ready reports whether the initial contents are loaded.
func (s *Store) Ready() bool { return s.ready.IsOpen() }

// Hash names how this store digests keys (sha256 or hmac-sha256).
func (s *Store) Hash() string { return s.hash.name() }

func (s *Store) apply(kve jetstream.KeyValueEntry) {
	if s.applied != nil {
		defer s.applied()
	}
	id := kve.Key()
	if !validID(id) {
		return
	}
	switch kve.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		s.mu.Lock()
		if cur := s.byID[id]; cur != nil && cur.rev < kve.Revision() {
			delete(s.byID, id)
			if s.byDigest[cur.digest] == cur {
				delete(s.byDigest, cur.digest)
			}
		}
		s.mu.Unlock()
		return
	}
	var rec record
	if err := json.Unmarshal(kve.Value(), &rec); err != nil {
		s.log.Error("skipping undecodable API key record", "key_id", id, "err", err)
		return
	}
	s.put(rec, kve.Revision())
}

// put indexes rec at rev unless a newer revision is indexed already.
func (s *Store) put(rec record, rev uint64) {
	var d Digest
	b, err := hex.DecodeString(rec.Digest)
	if err != nil || len(b) != len(d) {
		s.log.Error("skipping API key record with a bad digest", "key_id", rec.ID)
		return
	}
	copy(d[:], b)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.byID[rec.ID]
	if cur != nil && cur.rev >= rev {
		return
	}
	e := &entry{rec: rec, digest: d, rev: rev, lastUsed: new(atomic.Int64)}
	if cur != nil {
		e.lastUsed = cur.lastUsed
		if s.byDigest[cur.digest] == cur {
			delete(s.byDigest, cur.digest)
		}
	}
	s.byID[rec.ID] = e
	if rec.Hash != s.hash.name() {
		if cur == nil {
			s.log.Warn("API key was digested differently from this server's setting (was API_KEY_PEPPER changed?); it will not verify",
				"key_id", rec.ID, "key_hash", rec.Hash, "server_hash", s.hash.name())
		}
		return
	}
	s.byDigest[d] = e
}

var idPattern = regexp.MustCompile(`^key_[0-9a-f]{16}$`)

func validID(id string) bool { return idPattern.MatchString(id) }

func newID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "key_" + hex.EncodeToString(b[:]), nil
}

// NewKey describes a key to create.
type NewKey struct {
	Name                string
	UserID              string
	Permissions         []string
	RateLimitMultiplier float64 // 0 means 1
	ExpiresAt           *time.Time
	rotatedFrom         string
	lineage             string
}

func (n *NewKey) validate(now time.Time) error {
	if n.UserID == "" || len(n.UserID) > 128 || !printable(n.UserID) {
		return experiment.Invalid("user_id", "must be 1 to 128 bytes of printable text")
	}
	if len(n.Name) > 128 || !printable(n.Name) {
		return experiment.Invalid("name", "must be at most 128 bytes of printable text")
	}
	if err := ValidatePatterns(n.Permissions); err != nil {
		return experiment.Invalid("permissions", "%s", err.Error())
	}
	if n.RateLimitMultiplier == 0 {
		n.RateLimitMultiplier = 1
	}
	if !(n.RateLimitMultiplier > 0 && n.RateLimitMultiplier <= 1000) {
		return experiment.Invalid("rate_limit_multiplier", "must be in (0, 1000]")
	}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		return experiment.Invalid("expires_at", "must be in the future")
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Create stores a new key and returns its record and its plaintext, which is
// not kept anywhere: show it to the user once.
func (s *Store) Create(ctx context.Context, n NewKey) (*Key, string, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := n.validate(now); err != nil {
		return nil, "", err
	}
	plain, err := GenerateKey()
	if err != nil {
		return nil, "", fmt.Errorf("generating a key: %w", err)
	}
	id, err := newID()
	if err != nil {
		return nil, "", fmt.Errorf("generating a key id: %w", err)
	}
	d := s.hash.digest(plain)
	rec := record{
		Key: Key{
			ID: id, Prefix: DisplayPrefix(plain), Name: n.Name, UserID: n.UserID,
			Permissions: n.Permissions, RateLimitMultiplier: n.RateLimitMultiplier,
			CreatedAt: now, ExpiresAt: utc(n.ExpiresAt), RotatedFrom: n.rotatedFrom, Lineage: n.lineage,
		},
		Hash:   s.hash.name(),
		Digest: hex.EncodeToString(d[:]),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, "", fmt.Errorf("encoding key %s: %w", id, err)
	}
	rev, err := s.kv.Create(ctx, id, data)
	if err != nil {
		return nil, "", fmt.Errorf("storing key %s: %w", id, err)
	}
	s.put(rec, rev)
	k := rec.Key
	return &k, plain, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// List returns copies of every key, the API_KEY key first, then newest first.
func (s *Store) List() []*Key {
	s.mu.RLock()
	out := make([]*Key, 0, len(s.byID))
	for _, e := range s.byID {
		out = append(out, e.view())
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Static != out[j].Static {
			return out[i].Static
		}
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// view is a copy of the key with the freshest last_used_at known here.
func (e *entry) view() *Key {
	k := e.rec.Key
	k.Permissions = append([]string(nil), k.Permissions...)
	if lu := e.lastUsed.Load(); lu > 0 && (k.LastUsedAt == nil || k.LastUsedAt.UnixNano() < lu) {
		t := time.Unix(0, lu).UTC()
		k.LastUsedAt = &t
	}
	return &k
}

// Get returns a copy of the key with id. It serves from memory and falls back
// to the bucket for a key created on another replica a moment ago.
func (s *Store) Get(ctx context.Context, id string) (*Key, error) {
	s.mu.RLock()
	e := s.byID[id]
	s.mu.RUnlock()
	if e != nil {
		return e.view(), nil
	}
	if !validID(id) {
		return nil, ErrNotFound
	}
	kve, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", id, err)
	}
	s.apply(kve)
	s.mu.RLock()
	e = s.byID[id]
	s.mu.RUnlock()
	if e == nil {
		return nil, ErrNotFound
	}
	return e.view(), nil
}

// update applies fn to the stored record with compare-and-set, retrying when
// another writer got there first.
func (s *Store) update(ctx context.Context, id string, fn func(*record) error) (*Key, error) {
	if id == StaticKeyID {
		return nil, fmt.Errorf("%w: the API_KEY key lives in the environment: change or unset API_KEY and restart", ErrConflict)
	}
	if !validID(id) {
		return nil, ErrNotFound
	}
	for attempt := 0; ; attempt++ {
		kve, err := s.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("reading key %s: %w", id, err)
		}
		var rec record
		if err := json.Unmarshal(kve.Value(), &rec); err != nil {
			return nil, fmt.Errorf("decoding key %s: %w", id, err)
		}
		if err := fn(&rec); err != nil {
			return nil, err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encoding key %s: %w", id, err)
		}
		rev, err := s.kv.Update(ctx, id, data, kve.Revision())
		if err == nil {
			s.put(rec, rev)
			k := rec.Key
			return &k, nil
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 10 {
			continue
		}
		return nil, fmt.Errorf("updating key %s: %w", id, err)
	}
}

// Revoke revokes the key with id at once, on every replica. Revoking a
// revoked key changes nothing.
func (s *Store) Revoke(ctx context.Context, id string) (*Key, error) {
	return s.update(ctx, id, func(r *record) error {
		if r.RevokedAt == nil {
			now := s.now().UTC().Truncate(time.Millisecond)
			r.RevokedAt = &now
		}
		return nil
	})
}

// Rotate creates a successor of the key with id, with the same user,
// permissions and rate limit (and, when the old key expires, the same
// lifetime), and makes the old key expire after grace (a negative grace
// means the configured default). It returns the old key as updated, the new
// key and the new plaintext.
func (s *Store) Rotate(ctx context.Context, id string, grace time.Duration) (old, next *Key, plain string, err error) {
	if grace < 0 {
		grace = s.cfg.RotationGrace
	}
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, "", err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := rotatable(cur, now); err != nil {
		return nil, nil, "", err
	}
	n := NewKey{
		Name: cur.Name, UserID: cur.UserID, Permissions: cur.Permissions,
		RateLimitMultiplier: cur.RateLimitMultiplier, rotatedFrom: cur.ID, lineage: cur.LimitID(),
	}
	if cur.ExpiresAt != nil {
		t := now.Add(cur.ExpiresAt.Sub(cur.CreatedAt))
		n.ExpiresAt = &t
	}
	next, plain, err = s.Create(ctx, n)
	if err != nil {
		return nil, nil, "", err
	}
	old, err = s.update(ctx, id, func(r *record) error {
		if err := rotatable(&r.Key, now); err != nil {
			return err
		}
		r.RotatedTo = next.ID
		end := now.Add(grace)
		if r.ExpiresAt == nil || r.ExpiresAt.After(end) {
			r.ExpiresAt = &end
		}
		return nil
	})
	if err != nil {
		// The old key changed under us: do not leave a second live key.
		if _, rerr := s.Revoke(context.WithoutCancel(ctx), next.ID); rerr != nil {
			s.log.Error("revoking the successor of a failed rotation", "key_id", next.ID, "err", rerr)
		}
		return nil, nil, "", err
	}
	return old, next, plain, nil
}

func rotatable(k *Key, now time.Time) error {
	if k.Static {
		return fmt.Errorf("%w: the API_KEY key lives in the environment: change API_KEY and restart", ErrConflict)
	}
	if st := k.Status(now); st != "active" {
		return fmt.Errorf("%w: key %s is %s", ErrConflict, k.ID, st)
	}
	if k.RotatedTo != "" {
		return fmt.Errorf("%w: key %s was already rotated to %s", ErrConflict, k.ID, k.RotatedTo)
	}
	return nil
}

func (s *Store) flushLoop(ctx context.Context) {
	ticks := s.flushTicks
	if ticks == nil {
		t := time.NewTicker(s.cfg.LastUsedInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			s.flushLastUsed(fctx)
			cancel()
			return
		case <-ticks:
			s.flushLastUsed(ctx)
		}
	}
}

// flushLastUsed writes last_used_at of every key used since it was last
// written. A write that loses a race with another writer is skipped: the
// next round retries with the new revision.
func (s *Store) flushLastUsed(ctx context.Context) {
	type due struct {
		rec record
		rev uint64
	}
	var todo []due
	s.mu.RLock()
	for _, e := range s.byID {
		lu := e.lastUsed.Load()
		if e.rec.Static || lu == 0 {
			continue
		}
		t := time.Unix(0, lu).UTC().Truncate(time.Millisecond)
		if e.rec.LastUsedAt != nil && !e.rec.LastUsedAt.Before(t) {
			continue
		}
		rec := e.rec
		rec.LastUsedAt = &t
		todo = append(todo, due{rec, e.rev})
	}
	s.mu.RUnlock()
	for _, d := range todo {
		data, err := json.Marshal(d.rec)
		if err != nil {
			continue
		}
		rev, err := s.kv.Update(ctx, d.rec.ID, data, d.rev)
		switch {
		case err == nil:
			s.put(d.rec, rev)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			s.log.Debug("last_used_at write lost a race, retrying next round", "key_id", d.rec.ID)
		default:
			s.log.Warn("writing last_used_at", "key_id", d.rec.ID, "err", err)
		}
	}
}
