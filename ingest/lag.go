package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Lag is a snapshot of the ingest backlog, shared by every ingest process.
type Lag struct {
	// Pending is the number of messages in the stream not yet delivered: a
	// message holds one event, or up to eventv1.MaxBatchEvents of a batch.
	Pending uint64 `json:"pending"`
	// AckPending is the number of messages delivered but not yet
	// acknowledged.
	AckPending int `json:"ack_pending"`
	// OldestAge is the age of the oldest message not yet acknowledged; 0 when
	// ingest has caught up.
	OldestAge time.Duration `json:"-"`
	// OldestAgeSeconds is OldestAge for JSON.
	OldestAgeSeconds float64 `json:"oldest_unacked_age_seconds"`
	// MeasuredAt is when the snapshot was taken.
	MeasuredAt time.Time `json:"measured_at"`
}

type lagState struct {
	mu  sync.Mutex
	lag Lag
	ok  bool
}

// Lag returns the latest backlog snapshot; false before the first one.
func (c *Consumer) Lag() (Lag, bool) {
	c.lag.mu.Lock()
	defer c.lag.mu.Unlock()
	return c.lag.lag, c.lag.ok
}

// watchLag measures the backlog every LagInterval until ctx is done.
func (c *Consumer) watchLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		c.measureLag(ctx, cons)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Consumer) measureLag(ctx context.Context, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LagInterval)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		c.log.Debug("measuring ingest lag", "err", err)
		return
	}
	l := Lag{Pending: info.NumPending, AckPending: info.NumAckPending, MeasuredAt: time.Now()}
	if l.Pending > 0 || l.AckPending > 0 {
		if msg, err := c.stream(ctx).GetMsg(ctx, info.AckFloor.Stream+1); err == nil {
			l.OldestAge = max(0, time.Since(msg.Time))
		}
	}
	l.OldestAgeSeconds = l.OldestAge.Seconds()
	c.metrics.setPending(l.Pending, l.AckPending)
	c.metrics.lag.Set(l.OldestAgeSeconds)
	c.lag.mu.Lock()
	c.lag.lag, c.lag.ok = l, true
	c.lag.mu.Unlock()
}

func (c *Consumer) stream(ctx context.Context) interface {
	GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error)
} {
	s, err := c.js.Stream(ctx, eventv1.Stream)
	if err != nil {
		return noStream{err}
	}
	return s
}

type noStream struct{ err error }

func (n noStream) GetMsg(context.Context, uint64, ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	return nil, n.err
}
