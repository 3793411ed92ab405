// Package kvwatch keeps an in-memory view of a JetStream KV bucket current:
// it watches every key, hands each change to the owner's apply function, and
// re-establishes the watch when it ends early (a reconnect, a server restart).
package kvwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Run watches kv until ctx is done. apply receives every entry, in revision
// order, including deletes and purges; ready is called each time the
// bucket's initial contents have been delivered (owners make it idempotent).
// It returns nil after ctx is done and the watcher has stopped.
func Run(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, apply func(jetstream.KeyValueEntry), ready func()) error {
	for {
		err := watch(ctx, kv, apply, ready)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("kv watch ended, restarting", "bucket", kv.Bucket(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func watch(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry), ready func()) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", kv.Bucket(), err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil { // the initial contents have been delivered
				ready()
				continue
			}
			apply(e)
		}
	}
}

// Ready is a latch that opens once a watched view has loaded the bucket's
// initial contents. Its zero value is not usable: use NewReady.
type Ready struct {
	once sync.Once
	ch   chan struct{}
	what string
}

// NewReady returns a closed latch; what names the view in errors.
func NewReady(what string) *Ready { return &Ready{ch: make(chan struct{}), what: what} }

// Open opens the latch; later calls do nothing. Pass it to Run as ready.
func (r *Ready) Open() { r.once.Do(func() { close(r.ch) }) }

// Wait blocks until the latch opens or ctx is done.
func (r *Ready) Wait(ctx context.Context) error {
	select {
	case <-r.ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", r.what, ctx.Err())
	}
}

// IsOpen reports whether the initial contents are loaded.
func (r *Ready) IsOpen() bool {
	select {
	case <-r.ch:
		return true
	default:
		return false
	}
}
