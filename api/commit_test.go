package api

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// heldPublisher is an asyncPublisher whose acks the test releases: it
// records each message and hands out futures that complete on release.
type heldPublisher struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	futs []*heldFuture
	sent chan struct{} // one value per message published
	fail error         // PublishMsgAsync's error, when set
}

type heldFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *heldFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *heldFuture) Err() <-chan error            { return f.err }
func (f *heldFuture) Msg() *nats.Msg               { return f.msg }

func (p *heldPublisher) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if p.fail != nil {
		return nil, p.fail
	}
	f := &heldFuture{msg: m, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.futs = append(p.futs, f)
	p.mu.Unlock()
	p.sent <- struct{}{}
	return f, nil
}

func (p *heldPublisher) ack(i int) {
	p.mu.Lock()
	f := p.futs[i]
	p.mu.Unlock()
	f.ok <- &jetstream.PubAck{Stream: eventv1.Stream}
}

// TestCommitterGroupsConcurrentEvents checks group commit: an event alone
// goes out at once as a single event with its own message id; events that
// arrive while the in-flight messages await their acks leave together as
// one batch message when a slot frees; and each request is answered only
// after its own message is acknowledged.
func TestCommitterGroupsConcurrentEvents(t *testing.T) {
	pub := &heldPublisher{sent: make(chan struct{}, 100)}
	c := newCommitter(pub, 5*time.Second, func(string, string, int) {})
	queued := make(chan int, 100)
	c.onQueued = func(n int) { queued <- n }
	ctx := t.Context()
	el := func(id string) element {
		return element{subject: eventv1.SubjectAssignment, testID: "t", eventID: id, data: []byte(`{"event_id":"` + id + `"}`)}
	}
	answered := make(chan string, 100)
	submit := func(id string) {
		go func() {
			if _, err := c.commit(ctx, el(id)); err != nil {
				answered <- "error " + id
				return
			}
			answered <- id
		}()
	}
	// Two events fill both slots, each alone.
	submit("e1")
	<-pub.sent
	submit("e2")
	<-pub.sent
	for i, want := range []string{"e1", "e2"} {
		if m := pub.msgs[i]; m.Subject != eventv1.SubjectAssignment || m.Header.Get(jetstream.MsgIDHeader) != msgID(eventv1.SubjectAssignment, "t", want) {
			t.Fatalf("message %d = %s %v, want the single event %s with its own id", i, m.Subject, m.Header, want)
		}
	}
	// Ten more queue behind the full slots.
	for _, id := range []string{"e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11", "e12"} {
		submit(id)
	}
	select {
	case id := <-answered:
		t.Fatalf("%s was answered before any ack", id)
	default:
	}
	for n := 0; n < 10; n = <-queued {
	}
	pub.ack(0)
	if got := <-answered; got != "e1" {
		t.Fatalf("answered %s first, want e1", got)
	}
	<-pub.sent
	batch := pub.msgs[2]
	if batch.Subject != eventv1.SubjectAssignmentBatch || bytes.Count(batch.Data, []byte("\n")) != 9 {
		t.Fatalf("third message = %s with %d lines, want one batch of the 10 queued events", batch.Subject, bytes.Count(batch.Data, []byte("\n"))+1)
	}
	select {
	case id := <-answered:
		t.Fatalf("%s was answered before its batch's ack", id)
	default:
	}
	pub.ack(2)
	got := map[string]bool{}
	for range 10 {
		got[<-answered] = true
	}
	if len(got) != 10 || got["e2"] {
		t.Fatalf("after the batch's ack: answered %v, want the ten batched events (e2 still waits)", got)
	}
	pub.ack(1)
	if id := <-answered; id != "e2" {
		t.Fatalf("answered %s, want e2", id)
	}
	// A publish that fails answers with the error.
	pub.fail = errors.New("no responders")
	if _, err := c.commit(ctx, el("e13")); err == nil {
		t.Error("commit with a failing publisher = nil error")
	}
	// A request whose context ends stops waiting.
	pub.fail = nil
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := c.commit(short, el("e14")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("commit past its deadline = %v, want context.DeadlineExceeded", err)
	}
	<-pub.sent
}
