package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/experiment"
	"github.com/abacus-ab/abacus/internal/eventbus"
	"github.com/abacus-ab/abacus/internal/eventbus/eventbustest"
)

// newStore runs a Store on a connection of its own to url until the test
// ends; setup runs before Run (to set the test hook).
func newStore(t *testing.T, url string, setup ...func(*Store)) (*Store, jetstream.KeyValue) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kv, err := eventbustest.ConnectURL(t, url).KV(t.Context(), eventbus.BucketTests)
	if err != nil {
		t.Fatal(err)
	}
	s := New(kv, log)
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
	return s, kv
}

func def(id string) *experiment.Test {
	t := &experiment.Test{ID: id, Name: id, Type: experiment.TypeWorkflow, ControlVariantID: "a", PrimaryMetric: "m",
		Variants:  []experiment.Variant{{ID: "a", TrafficPercentage: 50}, {ID: "b", TrafficPercentage: 50}},
		CreatedAt: time.Now().UTC()}
	t.SetDefaults()
	return t
}

// TestReplicasSeeEachOther runs two stores on one NATS server, as two
// replicas would: a write on one is visible on the other within a second.
func TestReplicasSeeEachOther(t *testing.T) {
	srv := eventbustest.RunServer(t)
	a, _ := newStore(t, srv.ClientURL())
	applied := make(chan struct{}, 1) // a change b applied from its watch
	b, _ := newStore(t, srv.ClientURL(), func(s *Store) {
		s.applied = func() {
			select {
			case applied <- struct{}{}:
			default:
			}
		}
	})

	if err := a.Create(t.Context(), def("t1")); err != nil {
		t.Fatal(err)
	}
	// Read-your-write on the writer, at once.
	if got, err := a.Get(t.Context(), "t1"); err != nil || got.Status != experiment.StatusDraft {
		t.Fatalf("a.Get = %v, %v", got, err)
	}
	// The other replica: through the watch, or the KV fallback.
	if _, err := b.Get(t.Context(), "t1"); err != nil {
		t.Fatalf("b.Get right after create = %v", err)
	}
	gen := b.Generation()
	if _, err := a.Update(t.Context(), "t1", func(x *experiment.Test) error { return x.Start(time.Now()) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for {
		got, _ := b.Get(t.Context(), "t1")
		if got != nil && got.Status == experiment.StatusRunning {
			if b.Generation() == gen {
				t.Errorf("b's generation is still %d after applying the start", gen)
			}
			break
		}
		select {
		case <-applied: // check again
		case <-deadline.C:
			t.Fatalf("replica b still sees %v a second after the start on a", got.Status)
		}
	}
	if n := len(b.List()); n != 1 {
		t.Errorf("b.List() has %d tests, want 1", n)
	}
	for _, id := range []string{"missing", "a+b", "a:b@c"} { // the last two are not valid KV keys
		if _, err := b.Get(t.Context(), id); !errors.Is(err, experiment.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := b.Create(t.Context(), def("t1")); err == nil {
		t.Errorf("Create of an existing id succeeded, want an error")
	}
}

// TestUpdateIsCompareAndSet races many updates from two replicas: none is
// lost, because each write is conditional on the revision it read.
func TestUpdateIsCompareAndSet(t *testing.T) {
	srv := eventbustest.RunServer(t)
	a, _ := newStore(t, srv.ClientURL())
	b, _ := newStore(t, srv.ClientURL())
	if err := a.Create(t.Context(), def("t1")); err != nil {
		t.Fatal(err)
	}
	const perReplica = 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica)
	for _, s := range []*Store{a, b} {
		for range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Update(t.Context(), "t1", func(x *experiment.Test) error {
					x.MinSampleSize++
					return nil
				})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update = %v", err)
		}
	}
	got, err := a.Update(t.Context(), "t1", func(*experiment.Test) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(experiment.DefaultMinSampleSize + 2*perReplica); got.MinSampleSize != want {
		t.Errorf("after %d concurrent increments min_sample_size = %d, want %d", 2*perReplica, got.MinSampleSize, want)
	}
	// An aborted update writes nothing.
	boom := fmt.Errorf("boom")
	if _, err := a.Update(t.Context(), "t1", func(*experiment.Test) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Update returning an error = %v, want it passed through", err)
	}
}

// TestSurvivesRestart stores a test, restarts the server on the same store
// folder, and finds the test again.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := eventbustest.RunServerAt(t, -1, dir)
	a, _ := newStore(t, srv.ClientURL())
	if err := a.Create(t.Context(), def("keep")); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	srv2 := eventbustest.RunServerAt(t, -1, dir)
	b, _ := newStore(t, srv2.ClientURL())
	if _, err := b.Get(t.Context(), "keep"); err != nil {
		t.Errorf("after restart Get(keep) = %v, want the test", err)
	}
}
