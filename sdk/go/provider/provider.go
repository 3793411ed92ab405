package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/open-feature/go-sdk/openfeature"
)

// Name is the provider's name in OpenFeature metadata.
const Name = "abacus"

// Provider is an OpenFeature provider that evaluates Abacus tests locally.
// Its methods are safe for concurrent use.
type Provider struct {
	cfg  Config
	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	exposed *pairSet
	queue   chan event
	stats   counters

	events chan openfeature.Event

	mu      sync.Mutex // held by Init and Shutdown; guards started and the cancel funcs
	started bool       // Init has run
	closed  atomic.Bool
	// stop is closed by Shutdown: the poller exits, the senders post what
	// is queued and exit.
	stop chan struct{}
	// cancelPoll aborts the poller's request in flight (Shutdown);
	// cancelSend the senders' requests and retries (Shutdown's deadline).
	cancelPoll, cancelSend context.CancelFunc
	wg                     sync.WaitGroup
}

// Compile-time checks of the OpenFeature interfaces the provider meets.
var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
	_ openfeature.Tracker                  = (*Provider)(nil)
)

// New returns a provider for cfg. It does no I/O: Init (called by
// openfeature.SetProvider or SetProviderAndWait) fetches the definitions
// and starts the background work.
func New(cfg Config) (*Provider, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("provider config: %w", err)
	}
	return &Provider{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "abacus-openfeature"),
		exposed: newPairSet(cfg.ExposureCacheSize),
		queue:   make(chan event, cfg.QueueSize),
		events:  make(chan openfeature.Event, 16),
		stop:    make(chan struct{}),
	}, nil
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: Name}
}

// Hooks returns no hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel delivers PROVIDER_READY when the first definitions arrive
// after a failed Init, PROVIDER_CONFIGURATION_CHANGED when they change,
// and PROVIDER_STALE when a poll fails while definitions are held.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Init fetches the definitions and starts the poller and the senders; see
// InitWithContext.
func (p *Provider) Init(evalCtx openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext fetches the definitions once and starts the poller and
// the senders. When that first fetch fails it returns the error (a
// rejected API key as PROVIDER_FATAL), but the poller keeps trying and
// the provider becomes ready with the first definitions it gets.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	// Held throughout, so that a concurrent Shutdown waits for the
	// goroutines to have started.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed.Load() {
		return nil
	}
	p.started = true

	err := p.refresh(ctx)
	pollCtx, cancelPoll := context.WithCancel(context.Background())
	sendCtx, cancelSend := context.WithCancel(context.Background())
	p.cancelPoll, p.cancelSend = cancelPoll, cancelSend
	p.wg.Add(1)
	go p.poll(pollCtx, err == nil)
	if !p.cfg.DisableEvents {
		for range p.cfg.Senders {
			p.wg.Add(1)
			go p.send(sendCtx)
		}
	}
	if err != nil {
		code := openfeature.ProviderNotReadyCode
		if errors.Is(err, errUnauthorized) {
			code = openfeature.ProviderFatalCode
		}
		return &openfeature.ProviderInitError{ErrorCode: code, Message: err.Error()}
	}
	return nil
}

// Shutdown stops the provider; see ShutdownWithContext.
func (p *Provider) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultRequestTimeout)
	defer cancel()
	_ = p.ShutdownWithContext(ctx)
}

// ShutdownWithContext stops the poller, sends the queued events, and
// returns once every goroutine has exited. Events still unsent when ctx is
// done are dropped (and counted); the error is then ctx's.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return nil
	}
	close(p.stop)
	if !p.started {
		p.dropQueued()
		return nil
	}
	p.cancelPoll()
	defer p.cancelSend()
	defer p.dropQueued()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.cancelSend()
		<-done
		return ctx.Err()
	}
}

// dropQueued counts what is left in the queue after the senders exited
// (events queued while Shutdown began) as dropped.
func (p *Provider) dropQueued() {
	n := 0
	for {
		select {
		case <-p.queue:
			n++
		default:
			p.drop(n, ErrShutdown)
			return
		}
	}
}

// emit sends an OpenFeature event without blocking: a full channel drops
// it (the SDK reads the channel continuously).
func (p *Provider) emit(t openfeature.EventType, msg string) {
	select {
	case p.events <- openfeature.Event{ProviderName: Name, EventType: t, ProviderEventDetails: openfeature.ProviderEventDetails{Message: msg}}:
	default:
	}
}
