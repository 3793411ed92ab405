package provider

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultPollInterval      = 10 * time.Second
	DefaultRequestTimeout    = 10 * time.Second
	DefaultQueueSize         = 10_000
	DefaultBatchSize         = 500
	DefaultFlushInterval     = time.Second
	DefaultSenders           = 2
	DefaultMaxRetries        = 5
	DefaultRetryBackoff      = 200 * time.Millisecond
	DefaultExposureCacheSize = 100_000
)

// Config configures a Provider. Only BaseURL is required.
type Config struct {
	// BaseURL is the Abacus server, e.g. http://abacus:8000.
	BaseURL string
	// APIKey is sent in X-API-Key; it needs the permissions
	// ab_testing.assign (GET /flags) and ab_testing.record (POST /events).
	APIKey string
	// HTTPClient sends every request; nil means a client with
	// RequestTimeout.
	HTTPClient *http.Client
	// RequestTimeout bounds each request of the default HTTPClient.
	RequestTimeout time.Duration

	// PollInterval is how often the definitions are fetched again (with
	// If-None-Match: an unchanged set costs a 304).
	PollInterval time.Duration

	// DisableEvents turns off exposures and Track: nothing is sent.
	DisableEvents bool
	// QueueSize bounds the events waiting to be sent; an event that finds
	// the queue full is dropped.
	QueueSize int
	// BatchSize is the most events per request (the server takes 10,000).
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill.
	FlushInterval time.Duration
	// Senders is the number of requests in flight at once.
	Senders int
	// MaxRetries is how often a failed batch is sent again (with the same
	// event ids) before its events are dropped.
	MaxRetries int
	// RetryBackoff is the wait before the first retry; it doubles on each
	// retry. A 429's Retry-After wins when it is longer.
	RetryBackoff time.Duration
	// ExposureCacheSize is about how many (test, user) pairs are remembered
	// as exposed; a pair forgotten is sent again, which the server stores
	// once within its duplicate window and the analysis counts once.
	ExposureCacheSize int
	// OnDrop, when set, is called from a sender or an evaluation with the
	// number of events dropped and why. It must not block.
	OnDrop func(n int, err error)

	// Logger receives lifecycle messages and failures; nil discards them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.RequestTimeout}
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Senders == 0 {
		c.Senders = DefaultSenders
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.ExposureCacheSize == 0 {
		c.ExposureCacheSize = DefaultExposureCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.BaseURL == "":
		return errors.New("BaseURL is required")
	case !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://"):
		return errors.New("BaseURL must start with http:// or https://")
	case c.PollInterval < 0, c.RequestTimeout < 0, c.FlushInterval < 0, c.RetryBackoff < 0:
		return errors.New("durations must not be negative")
	case c.QueueSize < 0, c.Senders < 0, c.MaxRetries < 0, c.ExposureCacheSize < 0:
		return errors.New("sizes must not be negative")
	case c.BatchSize < 0 || c.BatchSize > 10_000:
		return errors.New("BatchSize must be in [1, 10000]")
	}
	return nil
}
