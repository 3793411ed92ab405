package registry

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// TestKeys checks test keys across two replicas: a key names one test on
// every replica, a second test cannot take it (the error names the
// holder), of two concurrent creates with one key exactly one wins, and a
// reservation whose test was never stored is taken over once it is older
// than orphanAge.
func TestKeys(t *testing.T) {
	srv := eventbustest.RunServer(t)
	a, kv := newStore(t, srv.ClientURL())
	b, _ := newStore(t, srv.ClientURL())
	ctx := t.Context()

	first := def("t-first")
	first.Key = "checkout-flow"
	if err := a.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := b.ByKey(ctx, "checkout-flow")
	if err != nil || got.ID != first.ID {
		t.Fatalf("ByKey on the other replica = %v, %v; want test %s", got, err, first.ID)
	}
	if _, err := b.ByKey(ctx, "no-such-key"); !errors.Is(err, experiment.ErrNotFound) {
		t.Errorf("ByKey(no-such-key) error = %v, want ErrNotFound", err)
	}

	second := def("t-second")
	second.Key = "checkout-flow"
	var taken *KeyTakenError
	if err := b.Create(ctx, second); !errors.As(err, &taken) || taken.Holder != first.ID {
		t.Fatalf("Create with a taken key = %v, want a KeyTakenError naming %s", err, first.ID)
	}
	if _, err := b.Get(ctx, second.ID); !errors.Is(err, experiment.ErrNotFound) {
		t.Errorf("the refused test was stored: Get = %v", err)
	}

	// Two replicas race for one key.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := def([]string{"t-race-a", "t-race-b"}[i])
			x.Key = "race"
			errs[i] = s.Create(ctx, x)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent creates with one key: errors %v and %v, want exactly one to succeed", errs[0], errs[1])
	}

	// A reservation left by a crash before the test was stored.
	if _, err := kv.Create(ctx, keyPrefix+"orphan", []byte("t-never-stored")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ByKey(ctx, "orphan"); !errors.Is(err, experiment.ErrNotFound) {
		t.Errorf("ByKey of an orphaned reservation = %v, want ErrNotFound", err)
	}
	heir := def("t-heir")
	heir.Key = "orphan"
	var taken2 *KeyTakenError
	if err := b.Create(ctx, heir); !errors.As(err, &taken2) {
		t.Fatalf("Create over a fresh reservation without its test = %v, want KeyTakenError (its holder may be storing it)", err)
	}
	b.now = func() time.Time { return time.Now().Add(orphanAge + time.Second) }
	if err := b.Create(ctx, heir); err != nil {
		t.Fatalf("Create over an orphaned reservation: %v", err)
	}
	if got, err := a.ByKey(ctx, "orphan"); err != nil || got.ID != heir.ID {
		t.Errorf("ByKey(orphan) = %v, %v; want test %s", got, err, heir.ID)
	}
	// Reservations are not tests.
	for _, x := range a.List() {
		if x.ID == "" || x.Name == "" {
			t.Errorf("List holds a non-test entry: %+v", x)
		}
	}
}
