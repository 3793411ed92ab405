package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// Config tunes the consumer.
type Config struct {
	// BatchSize is the most messages one insert takes, and it sizes the
	// bytes fetched at once (fetchBytes): a batch message holds up to
	// eventv1.MaxBatchEvents events, so the byte bound is what keeps an
	// insert near BatchSize events.
	BatchSize int
	// FlushInterval is the longest a fetched message waits for its batch to fill.
	FlushInterval time.Duration
	// Workers is the number of concurrent fetch-insert-ack loops.
	Workers int
	// AckWait is how long JetStream waits for an ack before redelivering.
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered but not yet acknowledged
	// across every worker of every process.
	MaxAckPending int
	// MaxBackoff caps the redelivery delay after ClickHouse errors.
	MaxBackoff time.Duration
	// InsertTimeout bounds all the work on one fetched batch: dead-lettering
	// poison messages, looking suspect ones up, recording the intent and the
	// insert itself, on shutdown too. AckWait must exceed it plus
	// FlushInterval, so that a message is redelivered only after the work on
	// its earlier delivery has ended (the defaults are 20s and 60s).
	InsertTimeout time.Duration
	// LagInterval is how often the consumer's lag is measured.
	LagInterval time.Duration
}

// MaxInsertTimeout bounds InsertTimeout. The analyzer folds result rows
// into per-user aggregates by the time ClickHouse stamped them (ingested_at,
// when the insert began) with a margin of two minutes for inserts still in
// flight (analysis/fold.go); an insert must end well within it.
const MaxInsertTimeout = time.Minute

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4 * c.BatchSize * c.Workers
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = 20 * time.Second
	}
	if c.LagInterval == 0 {
		c.LagInterval = 5 * time.Second
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return fmt.Errorf("ingest batch size %d: want 1 to 100000", c.BatchSize)
	case c.FlushInterval < time.Millisecond:
		return fmt.Errorf("ingest flush interval %v: want at least 1ms", c.FlushInterval)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("ingest workers %d: want 1 to 64", c.Workers)
	case c.InsertTimeout < time.Second || c.InsertTimeout > MaxInsertTimeout:
		return fmt.Errorf("ingest insert timeout %v: want 1s to %v", c.InsertTimeout, MaxInsertTimeout)
	case c.AckWait < c.InsertTimeout+c.FlushInterval+time.Second:
		return fmt.Errorf("ingest ack wait %v: want at least the insert timeout %v plus the flush interval %v plus 1s",
			c.AckWait, c.InsertTimeout, c.FlushInterval)
	case c.MaxAckPending < c.BatchSize:
		return fmt.Errorf("ingest max ack pending %d: want at least the batch size %d", c.MaxAckPending, c.BatchSize)
	}
	return nil
}

// Consumer stores events from JetStream in ClickHouse.
type Consumer struct {
	cfg     Config
	js      jetstream.JetStream
	writer  *Writer
	log     *slog.Logger
	metrics *metrics
	lag     lagState

	// suspectUpTo is the high-water mark read at start: messages at or
	// below it may already be in ClickHouse. -1 until it has been read.
	suspectUpTo atomic.Int64
	// reserved is the highest mark recorded by this process: marks are
	// reserved ahead (intentAhead batches), so most batches insert no
	// intent row at all.
	reserved atomic.Uint64
	// intentKey names this stream's marks in ingest_intents: the durable
	// consumer and the stream's creation time, so that a stream created
	// anew (sequences start again at 1) does not inherit old marks.
	intentKey string
}

// New returns a consumer. Call Run to start it.
func New(cfg Config, js jetstream.JetStream, conn driver.Conn, log *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	c := &Consumer{cfg: cfg, js: js, writer: &Writer{conn: conn, metrics: m}, log: log, metrics: m}
	c.suspectUpTo.Store(-1)
	return c, nil
}

// ConsumerConfig is the durable consumer that every ingest process shares.
func (c *Consumer) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:         eventv1.ConsumerIngest,
		Description:     "Abacus ingest: events into ClickHouse",
		AckPolicy:       jetstream.AckExplicitPolicy,
		AckWait:         c.cfg.AckWait,
		MaxAckPending:   c.cfg.MaxAckPending,
		MaxDeliver:      -1,
		DeliverPolicy:   jetstream.DeliverAllPolicy,
		FilterSubjects:  eventv1.Subjects(),
		MaxRequestBatch: c.cfg.BatchSize,
	}
}

// Run creates or updates the durable consumer, then runs the workers until
// ctx is done. It returns after every worker has flushed its last batch and
// exited.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, eventv1.Stream, c.consumerConfig())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("provisioning consumer %s: %w", eventv1.ConsumerIngest, err)
	}
	st, err := c.js.Stream(ctx, eventv1.Stream)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reading stream %s: %w", eventv1.Stream, err)
	}
	c.intentKey = eventv1.ConsumerIngest + "@" + st.CachedInfo().Created.UTC().Format(time.RFC3339Nano)
	c.log.Info("ingest started", "workers", c.cfg.Workers, "batch_size", c.cfg.BatchSize, "flush_interval", c.cfg.FlushInterval)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watchLag(ctx, cons)
	}()
	for i := range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(ctx, cons, c.log.With("worker", i))
		}()
	}
	wg.Wait()
	// Acks are sent without waiting: make sure the server has them before
	// reporting the batch in hand as done.
	if err := c.js.Conn().FlushTimeout(5 * time.Second); err != nil {
		c.log.Warn("flushing the last acks", "err", err)
	}
	c.log.Info("ingest stopped: all fetched events processed")
	return nil
}

// fetchBytes bounds the bytes of one fetch: about bytesPerEvent per event
// of a full batch, and never less than two batch messages (JetStream does
// not deliver a message larger than a fetch's byte budget).
func fetchBytes(batchSize int) int {
	const bytesPerEvent = 400
	return max(batchSize*bytesPerEvent, 2*eventv1.MaxBatchBytes+64<<10)
}

// work is one fetch-insert-ack loop. It exits when ctx is done, after
// processing the batch in hand.
func (c *Consumer) work(ctx context.Context, cons jetstream.Consumer, log *slog.Logger) {
	failures := 0
	for ctx.Err() == nil {
		batch, err := cons.Fetch(c.cfg.BatchSize, jetstream.FetchMaxWait(c.cfg.FlushInterval), jetstream.FetchMaxBytes(fetchBytes(c.cfg.BatchSize)))
		if err != nil {
			failures++
			log.Warn("fetching events", "err", err)
			sleep(ctx, backoff(failures, c.cfg.MaxBackoff))
			continue
		}
		msgs := make([]jetstream.Msg, 0, 64)
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			log.Debug("fetch ended early", "err", err, "batch_rows", len(msgs))
		}
		if len(msgs) == 0 {
			continue
		}
		// The batch in hand is finished even when shutdown has begun: its
		// messages are delivered and will otherwise wait AckWait to return.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.InsertTimeout)
		err = c.process(bctx, msgs, backoff(failures+1, c.cfg.MaxBackoff), log)
		cancel()
		if err != nil {
			failures++
			log.Error("storing events failed; redelivery scheduled", "batch_rows", len(msgs), "err", err)
			sleep(ctx, backoff(failures, c.cfg.MaxBackoff))
			continue
		}
		failures = 0
	}
}

// process decodes, inserts and acks one fetched batch. Poison messages go
// to the dead-letter stream and are terminated; the invalid lines of a batch
// message go there one by one, and its valid lines are stored. A
// redelivered event that ClickHouse already holds is acknowledged without a
// second insert. On a transient failure it naks the messages in hand with
// delay and returns the error.
//
// ctx bounds the whole batch (InsertTimeout). When an insert fails in a way
// that leaves its fate unknown (a timeout or a connection lost after the
// data was sent), the messages are naked with a delay of AckWait, so that
// the redelivery's lookup runs only after the server has finished with the
// first attempt.
func (c *Consumer) process(ctx context.Context, msgs []jetstream.Msg, delay time.Duration, log *slog.Logger) error {
	// pending is one message in hand and its valid events.
	type pending struct {
		msg     jetstream.Msg
		seq     uint64
		events  []event
		suspect bool
	}
	var held []pending
	nak := func(m jetstream.Msg, d time.Duration) {
		if err := m.NakWithDelay(d); err != nil {
			log.Debug("naking message", "err", err)
		}
	}
	for i, m := range msgs {
		evs, poison, err := decodeMessage(m.Subject(), m.Data())
		if err != nil {
			c.deadLetter(ctx, m, err, delay, log)
			continue
		}
		if len(poison) > 0 && !c.deadLetterLines(ctx, m, poison, log) {
			nak(m, delay) // the whole message comes back; nothing of it is lost
			continue
		}
		if len(evs) == 0 {
			if err := m.Term(); err != nil {
				log.Debug("terminating message", "err", err)
			}
			continue
		}
		p := pending{msg: m, events: evs, suspect: true}
		if md, err := m.Metadata(); err == nil {
			p.seq = md.Sequence.Stream
			p.suspect = md.NumDelivered > 1
			if !p.suspect {
				below, err := c.maybeStored(ctx, p.seq)
				if err != nil {
					for _, m := range msgs[i:] {
						nak(m, delay)
					}
					for _, p := range held {
						nak(p.msg, delay)
					}
					c.metrics.failures.WithLabelValues("insert").Inc()
					return err
				}
				p.suspect = below
			}
		}
		held = append(held, p)
	}
	nakAll := func(cause error) {
		d := delay
		if uncertain(cause) {
			d = max(d, c.cfg.AckWait)
		}
		for _, p := range held {
			nak(p.msg, d)
		}
	}
	var suspects []event
	for _, p := range held {
		if p.suspect {
			suspects = append(suspects, p.events...)
		}
	}
	var stored map[string]bool
	if len(suspects) > 0 {
		var err error
		if stored, err = c.writer.stored(ctx, suspects); err != nil {
			c.metrics.failures.WithLabelValues("insert").Inc()
			nakAll(nil)
			return err
		}
	}
	var b Batch
	var top uint64
	inserted, skipped := 0, 0
	for _, p := range held {
		for _, ev := range p.events {
			if p.suspect && stored[ev.key()] {
				skipped++
				continue
			}
			b.append(ev, p.seq)
			inserted++
			top = max(top, p.seq)
		}
	}
	if inserted > 0 {
		err := c.reserve(ctx, top)
		if err == nil {
			if err = c.writer.Write(ctx, &b); err != nil {
				err = &insertError{err}
			}
		}
		if err != nil {
			c.metrics.failures.WithLabelValues("insert").Inc()
			nakAll(err)
			return err
		}
	}
	for _, p := range held {
		if err := p.msg.Ack(); err != nil {
			log.Debug("acking message", "err", err)
		}
	}
	if skipped > 0 {
		c.metrics.duplicates.Add(float64(skipped))
		log.Info("skipped redelivered events already in ClickHouse", "events", skipped)
	}
	c.metrics.events.Add(float64(inserted))
	if inserted > 0 {
		// Per insert: a fetch of only poison or already stored events
		// inserts nothing.
		c.metrics.batchSize.Observe(float64(inserted))
	}
	return nil
}

// intentAhead is how many batches beyond the current one a recorded mark
// covers. A larger value means fewer intent rows (ClickHouse parts) and,
// after a crash, more messages looked up before they are inserted.
const intentAhead = 10

// reserve makes sure that a mark at or above top is recorded before a batch
// holding sequences up to top is inserted.
func (c *Consumer) reserve(ctx context.Context, top uint64) error {
	if top <= c.reserved.Load() {
		return nil
	}
	mark := top + uint64(intentAhead*c.cfg.BatchSize)
	if err := c.writer.recordIntent(ctx, c.intentKey, mark); err != nil {
		return err
	}
	for {
		cur := c.reserved.Load()
		if cur >= mark || c.reserved.CompareAndSwap(cur, mark) {
			return nil
		}
	}
}

// maybeStored reports whether a message with stream sequence seq may have
// been inserted by an earlier process: it is at or below the high-water mark
// of intents recorded before this consumer started. The mark is read once;
// an error reading it fails the batch.
func (c *Consumer) maybeStored(ctx context.Context, seq uint64) (bool, error) {
	mark := c.suspectUpTo.Load()
	if mark < 0 {
		hw, err := c.writer.highWater(ctx, c.intentKey)
		if err != nil {
			return true, err
		}
		c.suspectUpTo.CompareAndSwap(-1, int64(hw))
		mark = c.suspectUpTo.Load()
	}
	return seq <= uint64(mark), nil
}

// insertError marks a failed insert of event rows.
type insertError struct{ err error }

func (e *insertError) Error() string { return e.err.Error() }
func (e *insertError) Unwrap() error { return e.err }

// uncertain reports whether a failed insert may still commit: the server
// did not answer with an exception and the connection did not fail before
// anything was sent (a refused dial).
func uncertain(err error) bool {
	var ie *insertError
	if !errors.As(err, &ie) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

// deadLetter copies a poison message, with the reason, to the dead-letter
// stream and terminates it, so that it never blocks the stream. When the
// copy cannot be stored the message is naked instead: it is never dropped
// without a trace.
func (c *Consumer) deadLetter(ctx context.Context, m jetstream.Msg, reason error, delay time.Duration, log *slog.Logger) {
	if !c.storeDeadLetter(ctx, m, m.Data(), reason, -1, log) {
		if err := m.NakWithDelay(delay); err != nil {
			log.Debug("naking message", "err", err)
		}
		return
	}
	if err := m.Term(); err != nil {
		log.Debug("terminating message", "err", err)
	}
}

// deadLetterLines copies the invalid lines of a batch message, each with
// its reason and line number, to the dead-letter stream. It reports whether
// all of them were stored; if not, the caller naks the whole message, and
// the copies made are not repeated on redelivery (their message ids are
// the stream sequence and the line).
func (c *Consumer) deadLetterLines(ctx context.Context, m jetstream.Msg, poison []poisonLine, log *slog.Logger) bool {
	for _, p := range poison {
		if !c.storeDeadLetter(ctx, m, p.data, p.err, p.line, log) {
			return false
		}
	}
	return true
}

// storeDeadLetter publishes data, taken from message m (all of it, or its
// line number line when line >= 0), with the reason to the dead-letter
// stream, and reports whether the stream stored it. The copy's message id
// is made of m's stream sequence (and the line), so that a redelivery of m
// does not store it twice.
func (c *Consumer) storeDeadLetter(ctx context.Context, m jetstream.Msg, data []byte, reason error, line int, log *slog.Logger) bool {
	dl := nats.NewMsg(eventv1.SubjectDeadLetter)
	dl.Data = data
	dl.Header.Set(eventv1.HeaderDeadLetterReason, truncate(reason.Error(), 1024))
	dl.Header.Set(eventv1.HeaderOriginalSubject, m.Subject())
	var opts []jetstream.PublishOpt
	if md, err := m.Metadata(); err == nil {
		id := "dl-" + strconv.FormatUint(md.Sequence.Stream, 10)
		dl.Header.Set(eventv1.HeaderOriginalStreamSeq, id[len("dl-"):])
		if line >= 0 {
			id += "-" + strconv.Itoa(line)
		}
		opts = append(opts, jetstream.WithMsgID(id))
	}
	if line >= 0 {
		dl.Header.Set(eventv1.HeaderOriginalLine, strconv.Itoa(line))
	}
	if _, err := c.js.PublishMsg(ctx, dl, opts...); err != nil {
		log.Error("storing a poison event in the dead-letter stream; will retry", "subject", m.Subject(), "err", err)
		return false
	}
	c.metrics.failures.WithLabelValues("invalid").Inc()
	log.Warn("poison event moved to the dead-letter stream", "subject", m.Subject(), "line", line, "err", reason)
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func backoff(failures int, limit time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
