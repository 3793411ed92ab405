package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// eventsPath takes batches of assignment and result events.
const eventsPath = "/api/ab-testing/events"

// Why events are dropped (the error OnDrop receives).
var (
	ErrQueueFull = errors.New("the event queue is full")
	ErrShutdown  = errors.New("the provider is shut down")
	ErrRejected  = errors.New("the server rejected the event")
	ErrGaveUp    = errors.New("sending failed after every retry")
)

type eventKind uint8

const (
	kindAssignment eventKind = iota
	kindResult
)

// event is one queued assignment (exposure) or result.
type event struct {
	kind    eventKind
	test    string
	user    string
	variant string
	// id is a result's event id, made here so that a retry is stored once.
	// An assignment goes without one: the server derives its id from the
	// test and the user, which makes repeats of it one event anyway.
	id     string
	attrs  map[string]string // assignments
	metric string            // results
	value  float64           // results
}

// wireEvent is an element of POST /api/ab-testing/events. It has no
// timestamp: the server's clock stamps it on arrival, a second or so after
// the evaluation, which a client clock that is off cannot get rejected.
type wireEvent struct {
	Type       string             `json:"type"`
	TestID     string             `json:"test_id"`
	UserID     string             `json:"user_id"`
	VariantID  string             `json:"variant_id,omitempty"`
	EventID    string             `json:"event_id,omitempty"`
	Attributes map[string]string  `json:"attributes,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
}

// Stats counts the events of a provider since it was made.
type Stats struct {
	// Sent counts the events the server accepted.
	Sent uint64
	// Dropped counts the events given up: queue full, rejected by the
	// server, retries exhausted, or unsent at Shutdown's deadline.
	Dropped uint64
	// Retries counts the batches sent again.
	Retries uint64
	// Queued is how many events wait to be sent now.
	Queued int
}

type counters struct {
	sent, dropped, retries atomic.Uint64
}

// Stats returns the event counters.
func (p *Provider) Stats() Stats {
	return Stats{Sent: p.stats.sent.Load(), Dropped: p.stats.dropped.Load(), Retries: p.stats.retries.Load(), Queued: len(p.queue)}
}

func (p *Provider) drop(n int, err error) {
	if n == 0 {
		return
	}
	p.stats.dropped.Add(uint64(n))
	if p.cfg.OnDrop != nil {
		p.cfg.OnDrop(n, err)
	}
}

// enqueue queues ev without waiting and reports whether it was queued.
func (p *Provider) enqueue(ev event) bool {
	if p.cfg.DisableEvents {
		return false
	}
	if p.closed.Load() {
		p.drop(1, ErrShutdown)
		return false
	}
	select {
	case p.queue <- ev:
		return true
	default:
		p.drop(1, ErrQueueFull)
		return false
	}
}

// send is a sender: it collects queued events into batches of BatchSize,
// or fewer after FlushInterval, and posts them. When p.stop is closed it
// posts what is queued and exits; ctx (cancelled at Shutdown's deadline)
// ends the requests and retries in flight.
func (p *Provider) send(ctx context.Context) {
	defer p.wg.Done()
	batch := make([]event, 0, p.cfg.BatchSize)
	linger := time.NewTimer(p.cfg.FlushInterval)
	linger.Stop()
	flush := func() {
		linger.Stop()
		if len(batch) > 0 {
			p.post(ctx, batch)
			clear(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case ev := <-p.queue:
			if len(batch) == 0 {
				linger.Reset(p.cfg.FlushInterval)
			}
			batch = append(batch, ev)
			if len(batch) >= p.cfg.BatchSize {
				flush()
			}
		case <-linger.C:
			flush()
		case <-p.stop:
			for {
				select {
				case ev := <-p.queue:
					batch = append(batch, ev)
					if len(batch) >= p.cfg.BatchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// post sends one batch, again (unchanged, so that the server recognises
// it) after a network error, a 5xx or a 429, up to MaxRetries times.
func (p *Provider) post(ctx context.Context, batch []event) {
	body, err := encodeBatch(batch)
	if err != nil {
		p.dropBatch(batch, fmt.Errorf("encoding events: %w", err))
		return
	}
	backoff := p.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		wait, err := p.postOnce(ctx, body, len(batch))
		if err == nil {
			return
		}
		if wait < 0 || attempt >= p.cfg.MaxRetries || ctx.Err() != nil {
			if wait >= 0 {
				err = fmt.Errorf("%w: %w", ErrGaveUp, err)
			}
			p.log.Warn("dropping events", "events", len(batch), "err", err)
			p.dropBatch(batch, err)
			return
		}
		wait = max(wait, backoff)
		backoff *= 2
		p.stats.retries.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// postOnce posts body. On failure it returns how long to wait before a
// retry, or a negative wait when a retry cannot succeed.
func (p *Provider) postOnce(ctx context.Context, body []byte, n int) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BaseURL+eventsPath, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	p.authorize(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }() // read already
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusMultiStatus, http.StatusBadRequest:
		// 202: all accepted; 207: some rejected; 400: none valid (or the
		// request itself was refused). Rejected events fail the same way
		// when sent again: they are dropped, not retried.
		accepted := n
		if resp.StatusCode != http.StatusAccepted {
			var r struct {
				Accepted int `json:"accepted"`
				Results  []struct {
					Status string `json:"status"`
					Error  string `json:"error"`
				} `json:"results"`
				Error string `json:"error"`
			}
			_ = json.Unmarshal(raw, &r) // an unreadable answer rejects the whole batch
			accepted = min(max(r.Accepted, 0), n)
			why := r.Error
			for _, it := range r.Results {
				if it.Status == "rejected" {
					why = it.Error
					break
				}
			}
			p.log.Warn("the server rejected events", "events", n-accepted, "status", resp.StatusCode, "err", why)
			p.drop(n-accepted, fmt.Errorf("%w: status %d: %s", ErrRejected, resp.StatusCode, why))
		}
		p.stats.sent.Add(uint64(accepted))
		return 0, nil
	case http.StatusTooManyRequests:
		wait := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		return wait, errors.New("rate limited (429)")
	case http.StatusUnauthorized, http.StatusForbidden:
		return -1, fmt.Errorf("posting events: %d: %w", resp.StatusCode, errUnauthorized)
	}
	if resp.StatusCode >= 500 {
		return 0, fmt.Errorf("posting events: status %d: %.200s", resp.StatusCode, raw)
	}
	return -1, fmt.Errorf("%w: status %d: %.200s", ErrRejected, resp.StatusCode, raw)
}

// dropBatch counts a batch as dropped and forgets its exposures, so that
// a later evaluation sends them again.
func (p *Provider) dropBatch(batch []event, err error) {
	for _, ev := range batch {
		if ev.kind == kindAssignment {
			p.exposed.forget(pair{ev.test, ev.user})
		}
	}
	p.drop(len(batch), err)
}

func encodeBatch(batch []event) ([]byte, error) {
	out := make([]wireEvent, len(batch))
	for i, ev := range batch {
		w := wireEvent{TestID: ev.test, UserID: ev.user, VariantID: ev.variant, EventID: ev.id}
		if ev.kind == kindAssignment {
			w.Type, w.Attributes = "assignment", ev.attrs
		} else {
			w.Type, w.Metrics = "result", map[string]float64{ev.metric: ev.value}
		}
		out[i] = w
	}
	return json.Marshal(out)
}
