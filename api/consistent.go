package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Read-your-writes for analysis: GET .../analyze?consistent=true first
// waits until ingest has stored every event JetStream acknowledged before
// the request, so that a script that records and then analyzes sees its
// own results. Ingest acknowledges a message only after its rows are in
// ClickHouse (ingest/doc.go), so the wait is over when the ingest
// consumer's acknowledgement floor reaches the stream's last sequence as it
// was when the request arrived, or when the consumer has nothing pending.

// streamInspector reads the event stream's and the ingest consumer's state
// (met by jetstream.JetStream).
type streamInspector interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error)
}

// consistentPoll is how often the wait reads the consumer's state: ingest
// is another process, so there is no signal to wait on.
const consistentPoll = 20 * time.Millisecond

// waitIngested waits, at most Config.ConsistentWait, until ingest has
// stored every event in the stream now.
func (s *Server) waitIngested(ctx context.Context) error {
	if s.inspect == nil {
		return newError(http.StatusNotImplemented, "this server cannot read the event stream's state: consistent=true is not available")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistentWait)
	defer cancel()
	str, err := s.inspect.Stream(ctx, eventv1.Stream)
	if err != nil {
		return unavailable("reading the event stream's state failed; retry", err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return unavailable("reading the event stream's state failed; retry", err)
	}
	target := info.State.LastSeq
	tick := time.NewTicker(consistentPoll)
	defer tick.Stop()
	for {
		cons, err := s.inspect.Consumer(ctx, eventv1.Stream, eventv1.ConsumerIngest)
		if err == nil {
			ci, ierr := cons.Info(ctx)
			if ierr == nil && (ci.AckFloor.Stream >= target || ci.NumPending == 0 && ci.NumAckPending == 0) {
				return nil
			}
			err = ierr
		}
		select {
		case <-ctx.Done():
			if err != nil && ctx.Err() == nil {
				return unavailable("reading the ingest consumer's state failed; retry", err)
			}
			e := newError(http.StatusGatewayTimeout, "ingest did not store the events acknowledged before this request within %s; retry, or analyze without consistent=true", s.cfg.ConsistentWait)
			e.cause = fmt.Errorf("waiting for stream sequence %d: %w", target, ctx.Err())
			return e
		case <-tick.C:
		}
	}
}
