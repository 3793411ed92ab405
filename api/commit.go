package api

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Group commit of single events. assign, record and OFREP evaluation each
// publish one event and answer only after JetStream acknowledged it, so an
// answered request's event is stored. Publishing and acknowledging each
// event alone costs a JetStream message per request; the committer instead
// coalesces the events of concurrent requests into batch messages (the
// batch endpoint's, packBatch), and answers each request when its message
// is acknowledged.
//
// It never waits to fill a batch. An event is published at once when fewer
// than maxInFlight messages await their acks; otherwise it queues, and the
// queue leaves as one batch when an ack frees a slot. So a lone request
// costs one round trip, as before, and under load the batches grow with
// the load. A batch of one event goes out as the single event it is (its
// subject and message id), so that JetStream recognises a retried event
// sent alone; a retry grouped with other events is stored again and counted
// once by the analysis, as for the batch endpoint.
//
// The committer has no goroutine of its own while idle. A request that finds
// a free slot and no queue publishes its event itself and waits for the ack,
// as a plain synchronous publish would; one that must queue starts a
// flusher if there is none, which exits when the queue is empty, and each
// batch in flight has one goroutine that waits for its ack.
type committer struct {
	pub         asyncPublisher
	timeout     time.Duration // for each message's ack
	maxInFlight int
	published   func(subject, outcome string, n int)
	// onQueued, when set (by tests), is called with the queue's length
	// after each event joins it.
	onQueued func(queued int)

	mu       sync.Mutex
	queue    []*pendingEvent
	flushing bool
	inFlight int
	freed    *sync.Cond // signalled when an ack frees a slot
}

// pendingEvent is one event waiting for its batch's acknowledgement.
type pendingEvent struct {
	el   element
	done chan commitResult // buffered: the committer never blocks on it
}

type commitResult struct {
	duplicate bool
	err       error
}

// defaultMaxInFlight bounds the messages awaiting acks: two keep JetStream
// busy while the next batch fills.
const defaultMaxInFlight = 2

func newCommitter(pub asyncPublisher, timeout time.Duration, published func(subject, outcome string, n int)) *committer {
	c := &committer{pub: pub, timeout: timeout, maxInFlight: defaultMaxInFlight, published: published}
	c.freed = sync.NewCond(&c.mu)
	return c
}

// commit publishes the event and waits until JetStream acknowledged it or
// ctx is done.
func (c *committer) commit(ctx context.Context, el element) (duplicate bool, err error) {
	c.mu.Lock()
	if !c.flushing && c.inFlight < c.maxInFlight {
		// Uncontended: publish from this goroutine, as a lone event.
		c.inFlight++
		c.mu.Unlock()
		defer c.release()
		return c.publishOne(ctx, el)
	}
	p := &pendingEvent{el: el, done: make(chan commitResult, 1)}
	c.queue = append(c.queue, p)
	start := !c.flushing
	c.flushing = true
	if c.onQueued != nil {
		c.onQueued(len(c.queue))
	}
	c.mu.Unlock()
	if start {
		go c.flush()
	}
	select {
	case r := <-p.done:
		return r.duplicate, r.err
	case <-ctx.Done():
		// The event may still be stored: the caller names its id.
		return false, ctx.Err()
	}
}

// publishOne publishes a lone event under its own subject and message id
// and waits for the ack; the caller holds a slot.
func (c *committer) publishOne(ctx context.Context, el element) (bool, error) {
	var r commitResult
	f, err := publishAsync(c.pub, el.subject, msgID(el.subject, el.testID, el.eventID), el.data, c.timeout)
	if err == nil {
		r = awaitCommit(ctx, f)
	} else {
		r.err = err
	}
	c.published(el.subject, r.outcome(), 1)
	return r.duplicate, r.err
}

// awaitCommit waits for a message's ack as a commitResult.
func awaitCommit(ctx context.Context, f jetstream.PubAckFuture) commitResult {
	ack, err := awaitAck(ctx, f)
	if err != nil {
		return commitResult{err: err}
	}
	return commitResult{duplicate: ack.Duplicate}
}

// outcome is the abacus_events_published_total label of a result.
func (r commitResult) outcome() string {
	switch {
	case r.err != nil:
		return "error"
	case r.duplicate:
		return "duplicate"
	}
	return "ok"
}

// release frees a slot and wakes the flusher waiting for one.
func (c *committer) release() {
	c.mu.Lock()
	c.inFlight--
	c.freed.Signal()
	c.mu.Unlock()
}

// flush publishes the queue, a batch whenever a slot is free, until the
// queue is empty.
func (c *committer) flush() {
	c.mu.Lock()
	for {
		for c.inFlight >= c.maxInFlight {
			c.freed.Wait()
		}
		if len(c.queue) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		c.publish(batch)
		c.mu.Lock()
	}
}

// publish sends the batch's messages; a goroutine per message waits for its
// ack and answers its events.
func (c *committer) publish(batch []*pendingEvent) {
	els := make([]element, len(batch))
	for i, p := range batch {
		els[i] = p.el
		els[i].index = i
	}
	for _, m := range packBatch(els) {
		subject, id, data := m.subject, m.id, m.data
		if len(m.elements) == 1 {
			el := m.elements[0]
			subject, id, data = el.subject, msgID(el.subject, el.testID, el.eventID), el.data
		}
		events := make([]*pendingEvent, len(m.elements))
		for i, el := range m.elements {
			events[i] = batch[el.index]
		}
		kind := m.elements[0].subject
		f, err := publishAsync(c.pub, subject, id, data, c.timeout)
		if err != nil {
			c.answer(kind, events, commitResult{err: err})
			continue
		}
		c.mu.Lock()
		c.inFlight++
		c.mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			r := awaitCommit(ctx, f)
			cancel()
			c.answer(kind, events, r)
			c.release()
		}()
	}
}

func (c *committer) answer(subject string, events []*pendingEvent, r commitResult) {
	c.published(subject, r.outcome(), len(events))
	for _, p := range events {
		p.done <- r
	}
}
