package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// keysKV connects to url and returns the provisioned keys bucket.
func keysKV(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	kv, err := eventbustest.ConnectURL(t, url).KV(t.Context(), eventbus.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a settable offset from the wall clock.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// startStore runs a Store over kv until the test ends; setup runs before
// Run (to set the test hooks).
func startStore(t *testing.T, kv jetstream.KeyValue, cfg Config, log *slog.Logger, setup ...func(*Store)) (*Store, *clock) {
	t.Helper()
	if log == nil {
		log = discard()
	}
	s, err := NewStore(kv, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	s.now = c.now
	for _, f := range setup {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := s.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func newStore(t *testing.T, cfg Config) (*Store, *clock) {
	t.Helper()
	return startStore(t, keysKV(t, eventbustest.RunServer(t).ClientURL()), cfg, nil)
}

func mustCreate(t *testing.T, s *Store, n NewKey) (*Key, string) {
	t.Helper()
	k, plain, err := s.Create(t.Context(), n)
	if err != nil {
		t.Fatalf("Create(%+v) = %v", n, err)
	}
	return k, plain
}

func TestCreateValidation(t *testing.T) {
	s, _ := newStore(t, Config{})
	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name      string
		n         NewKey
		wantField string
	}{
		{"valid", NewKey{UserID: "u1", Permissions: []string{"ab_testing.read"}, ExpiresAt: &future}, ""},
		{"no user", NewKey{Permissions: []string{"*"}}, "user_id"},
		{"control character in user", NewKey{UserID: "a\nb", Permissions: []string{"*"}}, "user_id"},
		{"no permissions", NewKey{UserID: "u1"}, "permissions"},
		{"typo permission", NewKey{UserID: "u1", Permissions: []string{"ab_testing.raed"}}, "permissions"},
		{"negative multiplier", NewKey{UserID: "u1", Permissions: []string{"*"}, RateLimitMultiplier: -1}, "rate_limit_multiplier"},
		{"huge multiplier", NewKey{UserID: "u1", Permissions: []string{"*"}, RateLimitMultiplier: 1e6}, "rate_limit_multiplier"},
		{"expired at birth", NewKey{UserID: "u1", Permissions: []string{"*"}, ExpiresAt: &past}, "expires_at"},
		{"long name", NewKey{UserID: "u1", Permissions: []string{"*"}, Name: strings.Repeat("n", 129)}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, plain, err := s.Create(t.Context(), tt.n)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Create() = %v", err)
				}
				if k.RateLimitMultiplier != 1 || k.Prefix != DisplayPrefix(plain) || ParseKey(plain) != nil {
					t.Errorf("Create() = %+v, %q: want multiplier 1, the plaintext's prefix and a well-formed key", k, k.Prefix)
				}
				return
			}
			var ve *experiment.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Errorf("Create() = %v, want a validation error on %s", err, tt.wantField)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	s, clk := newStore(t, Config{})
	inHour := time.Now().Add(time.Hour)
	live, livePlain := mustCreate(t, s, NewKey{UserID: "u1", Permissions: []string{"ab_testing.*"}})
	_, expPlain := mustCreate(t, s, NewKey{UserID: "u2", Permissions: []string{"*"}, ExpiresAt: &inHour})
	revoked, revPlain := mustCreate(t, s, NewKey{UserID: "u3", Permissions: []string{"*"}})
	if _, err := s.Revoke(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := GenerateKey()

	check := func(name, plain string, want error) {
		t.Helper()
		k, err := s.Verify(plain)
		if !errors.Is(err, want) {
			t.Errorf("%s: Verify() = %v, want %v", name, err, want)
		}
		if (err == nil) != (k != nil) {
			t.Errorf("%s: Verify() = %v, %v: want a key exactly when there is no error", name, k, err)
		}
	}
	check("live", livePlain, nil)
	check("expiring later", expPlain, nil)
	check("revoked", revPlain, ErrRevoked)
	check("unknown", unknown, ErrUnknown)
	check("malformed", livePlain[:KeyLen-1], ErrMalformed)
	check("empty", "", ErrMalformed)

	k, _ := s.Verify(livePlain)
	if k.ID != live.ID || !k.Allows(TestsAssign) || k.Allows(AdminKeys) {
		t.Errorf("Verify() = %+v: want %s allowing ab_testing.assign, not admin.keys", k, live.ID)
	}

	clk.advance(time.Hour)
	check("expired", expPlain, ErrExpired)
	check("live an hour later", livePlain, nil)
}

func TestRotate(t *testing.T) {
	s, clk := newStore(t, Config{RotationGrace: time.Hour})
	inDay := time.Now().Add(24 * time.Hour)
	old, oldPlain := mustCreate(t, s, NewKey{UserID: "u1", Name: "ci", Permissions: []string{"ab_testing.read"}, RateLimitMultiplier: 2, ExpiresAt: &inDay})

	upd, next, nextPlain, err := s.Rotate(t.Context(), old.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	if upd.RotatedTo != next.ID || next.RotatedFrom != old.ID {
		t.Errorf("rotate links %s -> %s, %s <- %s; want them linked", upd.ID, upd.RotatedTo, next.ID, next.RotatedFrom)
	}
	if next.UserID != "u1" || next.Name != "ci" || next.RateLimitMultiplier != 2 || fmt.Sprint(next.Permissions) != "[ab_testing.read]" {
		t.Errorf("successor %+v does not carry the old key's user, name, multiplier and permissions", next)
	}
	if next.ExpiresAt == nil || next.ExpiresAt.Sub(next.CreatedAt).Round(time.Minute) != 24*time.Hour {
		t.Errorf("successor expires %v, want the old key's 24h lifetime from now", next.ExpiresAt)
	}
	if upd.ExpiresAt == nil || upd.ExpiresAt.Sub(next.CreatedAt).Round(time.Minute) != time.Hour {
		t.Errorf("old key expires %v, want an hour (the grace) after rotation", upd.ExpiresAt)
	}
	for _, p := range []string{oldPlain, nextPlain} {
		if _, err := s.Verify(p); err != nil {
			t.Errorf("during the grace period Verify(%s) = %v, want both keys to work", DisplayPrefix(p), err)
		}
	}
	if _, _, _, err := s.Rotate(t.Context(), old.ID, -1); !errors.Is(err, ErrConflict) {
		t.Errorf("rotating a rotated key = %v, want ErrConflict", err)
	}
	clk.advance(time.Hour)
	if _, err := s.Verify(oldPlain); !errors.Is(err, ErrExpired) {
		t.Errorf("after the grace period Verify(old) = %v, want ErrExpired", err)
	}
	if _, err := s.Verify(nextPlain); err != nil {
		t.Errorf("after the grace period Verify(new) = %v, want nil", err)
	}

	// Grace 0: the old key stops at once. A grace longer than the old key's
	// remaining life does not extend it.
	short := time.Now().Add(90 * time.Minute)
	a, aPlain := mustCreate(t, s, NewKey{UserID: "u2", Permissions: []string{"*"}, ExpiresAt: &short})
	if _, _, _, err := s.Rotate(t.Context(), a.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(aPlain); !errors.Is(err, ErrExpired) {
		t.Errorf("after rotation with grace 0 Verify(old) = %v, want ErrExpired", err)
	}
	b, _ := mustCreate(t, s, NewKey{UserID: "u3", Permissions: []string{"*"}, ExpiresAt: &short})
	ub, _, _, err := s.Rotate(t.Context(), b.ID, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !ub.ExpiresAt.Equal(*b.ExpiresAt) {
		t.Errorf("rotation with a long grace moved expiry from %v to %v, want it kept", b.ExpiresAt, ub.ExpiresAt)
	}

	r, _ := mustCreate(t, s, NewKey{UserID: "u4", Permissions: []string{"*"}})
	s.Revoke(t.Context(), r.ID)
	if _, _, _, err := s.Rotate(t.Context(), r.ID, -1); !errors.Is(err, ErrConflict) {
		t.Errorf("rotating a revoked key = %v, want ErrConflict", err)
	}
	if _, _, _, err := s.Rotate(t.Context(), "key_0000000000000000", -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotating an unknown key = %v, want ErrNotFound", err)
	}
}

func TestStaticKey(t *testing.T) {
	static, _ := GenerateKey()
	if _, err := NewStore(nil, Config{StaticKey: "changeme"}, discard()); err == nil {
		t.Error("NewStore with API_KEY=changeme: want an error")
	}
	s, _ := newStore(t, Config{StaticKey: static})
	k, err := s.Verify(static)
	if err != nil || k.ID != StaticKeyID || !k.Allows(AdminKeys) || !k.Static {
		t.Fatalf("Verify(API_KEY) = %+v, %v: want the static admin key", k, err)
	}
	if _, err := s.Revoke(t.Context(), StaticKeyID); !errors.Is(err, ErrConflict) {
		t.Errorf("revoking the API_KEY key = %v, want ErrConflict", err)
	}
	if _, _, _, err := s.Rotate(t.Context(), StaticKeyID, -1); !errors.Is(err, ErrConflict) {
		t.Errorf("rotating the API_KEY key = %v, want ErrConflict", err)
	}
	mustCreate(t, s, NewKey{UserID: "u1", Permissions: []string{"*"}})
	if l := s.List(); len(l) != 2 || l[0].ID != StaticKeyID {
		t.Errorf("List() = %v, want the API_KEY key first of 2", l)
	}
}

// TestCrossReplica runs two stores on separate connections to one server: a
// key created, revoked or rotated on one takes effect on the other within a
// second.
func TestCrossReplica(t *testing.T) {
	srv := eventbustest.RunServer(t)
	// applied signals each change a replica applies from its watch.
	notify := func(ch chan struct{}) func(*Store) {
		return func(s *Store) {
			s.applied = func() {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}
	appliedA, appliedB := make(chan struct{}, 1), make(chan struct{}, 1)
	a, _ := startStore(t, keysKV(t, srv.ClientURL()), Config{}, nil, notify(appliedA))
	b, _ := startStore(t, keysKV(t, srv.ClientURL()), Config{}, nil, notify(appliedB))

	// within checks cond after each change the replica applies, for up
	// to a second.
	within := func(what string, applied <-chan struct{}, cond func() bool) {
		t.Helper()
		deadline := time.NewTimer(time.Second)
		defer deadline.Stop()
		for !cond() {
			select {
			case <-applied:
			case <-deadline.C:
				t.Fatalf("%s: not seen on the other replica within 1s", what)
			}
		}
	}
	k, plain := mustCreate(t, a, NewKey{UserID: "u1", Permissions: []string{"*"}})
	within("create", appliedB, func() bool { _, err := b.Verify(plain); return err == nil })
	if _, err := a.Revoke(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	within("revoke", appliedB, func() bool { _, err := b.Verify(plain); return errors.Is(err, ErrRevoked) })

	k2, plain2 := mustCreate(t, b, NewKey{UserID: "u2", Permissions: []string{"*"}})
	within("create on b", appliedA, func() bool { _, err := a.Verify(plain2); return err == nil })
	if _, _, _, err := a.Rotate(t.Context(), k2.ID, 0); err != nil {
		t.Fatal(err)
	}
	within("rotate", appliedB, func() bool { _, err := b.Verify(plain2); return errors.Is(err, ErrExpired) })
	if got, err := b.Get(t.Context(), k2.ID); err != nil || got.RotatedTo == "" {
		t.Errorf("b.Get(rotated) = %+v, %v: want rotated_to set", got, err)
	}
}

func TestSurvivesRestart(t *testing.T) {
	kv := keysKV(t, eventbustest.RunServer(t).ClientURL())
	s1, err := NewStore(kv, Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s1.Run(ctx); close(done) }()
	s1.WaitReady(t.Context())
	_, plain := mustCreate(t, s1, NewKey{UserID: "u1", Permissions: []string{"*"}})
	cancel()
	<-done

	s2, _ := startStore(t, kv, Config{}, nil)
	if _, err := s2.Verify(plain); err != nil {
		t.Errorf("after restart Verify() = %v, want the stored key", err)
	}
}

func TestLastUsedWriteBehind(t *testing.T) {
	kv := keysKV(t, eventbustest.RunServer(t).ClientURL())
	// The test drives the write-behind rounds. flushLoop takes the next
	// tick only after the round in hand has finished, so each send on the
	// unbuffered channel returns once the round before it is done.
	ticks := make(chan time.Time)
	round := func() { ticks <- time.Now() }
	s, _ := startStore(t, kv, Config{LastUsedInterval: 100 * time.Millisecond}, nil,
		func(s *Store) { s.flushTicks = ticks })
	k, plain := mustCreate(t, s, NewKey{UserID: "u1", Permissions: []string{"*"}})
	if k.LastUsedAt != nil {
		t.Fatalf("new key has last_used_at %v", k.LastUsedAt)
	}
	used := time.Now()
	for range 1000 {
		if _, err := s.Verify(plain); err != nil {
			t.Fatal(err)
		}
	}
	round()
	round() // the first round has written
	var stored record
	e, err := kv.Get(t.Context(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(e.Value(), &stored)
	if stored.LastUsedAt == nil {
		t.Fatal("last_used_at not written by the first write-behind round")
	}
	if d := stored.LastUsedAt.Sub(used); d < -time.Second || d > time.Second {
		t.Errorf("stored last_used_at = %v, want about %v", stored.LastUsedAt, used)
	}
	// 1,000 verifications and a few idle rounds make one write, not 1,000.
	round()
	round()
	round() // the second to fourth rounds are done
	hist, err := kv.History(t.Context(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Errorf("the key has %d revisions, want 2 (create, one last_used_at write)", len(hist))
	}
	if got, _ := s.Get(t.Context(), k.ID); got.LastUsedAt == nil {
		t.Error("Get() after use has no last_used_at")
	}
}

func TestPepperChangeInvalidatesKeys(t *testing.T) {
	srv := eventbustest.RunServer(t)
	peppered, _ := startStore(t, keysKV(t, srv.ClientURL()), Config{Pepper: []byte("s3cret-pepper")}, nil)
	_, plain := mustCreate(t, peppered, NewKey{UserID: "u1", Permissions: []string{"*"}})
	if _, err := peppered.Verify(plain); err != nil {
		t.Fatalf("Verify() with the pepper = %v", err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	plainStore, _ := startStore(t, keysKV(t, srv.ClientURL()), Config{}, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)))
	if _, err := plainStore.Verify(plain); !errors.Is(err, ErrUnknown) {
		t.Errorf("Verify() without the pepper = %v, want ErrUnknown", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "API_KEY_PEPPER") {
		t.Errorf("a store with a different pepper logged no warning:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), plain) {
		t.Error("the log contains the key")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// benchStore is a store with n keys indexed (without NATS), and one of them.
func benchStore(b *testing.B, n int, pepper []byte) (*Store, string) {
	s, err := NewStore(nil, Config{Pepper: pepper}, discard())
	if err != nil {
		b.Fatal(err)
	}
	var plain string
	for i := range n {
		p, _ := GenerateKey()
		d := s.hash.digest(p)
		s.put(record{
			Key:  Key{ID: fmt.Sprintf("key_%016x", i), Permissions: []string{"ab_testing.*"}, CreatedAt: time.Now()},
			Hash: s.hash.name(), Digest: fmt.Sprintf("%x", d[:]),
		}, 1)
		plain = p
	}
	return s, plain
}

// BenchmarkVerify measures the per-request check: parse, digest, lookup,
// expiry, permission. The target is under 2µs and no allocation.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name   string
		pepper []byte
	}{{"sha256", nil}, {"hmac", []byte("pepper")}} {
		b.Run(bc.name, func(b *testing.B) {
			s, plain := benchStore(b, 10_000, bc.pepper)
			b.ReportAllocs()
			for b.Loop() {
				k, err := s.Verify(plain)
				if err != nil || !k.Allows(TestsAssign) {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		s, plain := benchStore(b, 10_000, []byte("pepper"))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Verify(plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
