// Package eventbus connects Abacus to NATS: an embedded nats-server with
// JetStream on disk when no URL is configured, or an external server or
// cluster. It provisions the event stream and the KV buckets idempotently.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abacus-ab/abacus/schemas/eventv1"
)

// KV buckets.
const (
	// BucketTests holds test definitions, keyed by test id.
	BucketTests = "AB_TESTS"
	// BucketReports holds the latest analysis report of each test, keyed by test id.
	BucketReports = "AB_REPORTS"
	// BucketKeys holds API key records (digests, never plaintext), keyed by key id.
	BucketKeys = "AB_KEYS"
)

// Config says where NATS is.
type Config struct {
	// URL of an external server or cluster (comma-separated seeds). Empty
	// starts an embedded server.
	URL string
	// CredsFile is an optional NATS credentials file for URL.
	CredsFile string
	// DataDir is where the embedded server keeps JetStream files.
	DataDir string
	// EmbeddedListen is host:port for the embedded server to accept other
	// clients on (other Abacus replicas, the nats CLI). Empty: in-process only.
	EmbeddedListen string
	// Replicas of streams and buckets (1 for a single server, 3 in a cluster).
	Replicas int
	// StreamMaxAge is how long events stay in the stream.
	StreamMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers message ids: a
	// client's retry of an event within it is stored once.
	DuplicateWindow time.Duration
	// Name identifies this client to the server.
	Name string
}

func (c *Config) setDefaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.StreamMaxAge == 0 {
		c.StreamMaxAge = 72 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.Name == "" {
		c.Name = "abacus"
	}
}

// Bus is a NATS connection with JetStream, and the embedded server if there
// is one.
type Bus struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	srv *server.Server
	log *slog.Logger
	cfg Config
}

// Connect starts the embedded server (when cfg.URL is empty) and connects.
func Connect(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	cfg.setDefaults()
	b := &Bus{log: log, cfg: cfg}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// No buffering while disconnected: a publish that the API reports
		// as failed (503) must not be flushed to the server later.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
		log.Info("embedded nats started", "store_dir", srv.StoreDir(), "listen", cfg.EmbeddedListen)
	} else if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	b.NC = nc
	// Batches publish up to 10,000 events at once: the async window must
	// hold a whole batch.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(32768))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("creating JetStream context: %w", err)
	}
	b.JS = js
	return b, nil
}

func startEmbedded(cfg Config) (*server.Server, error) {
	o := &server.Options{
		ServerName: "abacus-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.EmbeddedListen == "",
	}
	if cfg.EmbeddedListen != "" {
		host, port, err := net.SplitHostPort(cfg.EmbeddedListen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS listen address %q: %w", cfg.EmbeddedListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS listen port %q: %w", port, err)
		}
		o.Host, o.Port = host, p
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("configuring embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS did not become ready within 30s")
	}
	return srv, nil
}

// Provision creates or updates the event stream and the KV buckets. It is
// idempotent and safe to run from many replicas at once.
func (b *Bus) Provision(ctx context.Context) error {
	_, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        eventv1.Stream,
		Description: "Abacus assignment and result events, until ingest stores them in ClickHouse",
		Subjects:    eventv1.Subjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      b.cfg.StreamMaxAge,
		Duplicates:  b.cfg.DuplicateWindow,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("provisioning stream %s: %w", eventv1.Stream, err)
	}
	_, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        eventv1.StreamDeadLetter,
		Description: "Abacus events that ingest could not store, with the reason in a header",
		Subjects:    []string{eventv1.SubjectDeadLetter},
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		MaxBytes:    1 << 30,
		Discard:     jetstream.DiscardOld,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("provisioning stream %s: %w", eventv1.StreamDeadLetter, err)
	}
	for _, kv := range []jetstream.KeyValueConfig{
		{Bucket: BucketTests, Description: "Abacus test definitions", History: 5},
		{Bucket: BucketReports, Description: "Abacus latest analysis reports", History: 1},
		{Bucket: BucketKeys, Description: "Abacus API keys (digests only)", History: 10},
	} {
		kv.Storage = jetstream.FileStorage
		kv.Replicas = b.cfg.Replicas
		if _, err := b.JS.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("provisioning KV bucket %s: %w", kv.Bucket, err)
		}
	}
	return nil
}

// KV opens a provisioned bucket.
func (b *Bus) KV(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.JS.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("opening KV bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Ping checks that the server answers, for readiness probes.
func (b *Bus) Ping(ctx context.Context) error {
	if st := b.NC.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats connection is %s", st)
	}
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("querying JetStream: %w", err)
	}
	return nil
}

// Close drains the connection, waiting up to timeout for in-flight messages,
// then shuts the embedded server down.
func (b *Bus) Close() {
	if b.NC != nil && !b.NC.IsClosed() {
		done := make(chan struct{})
		b.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := b.NC.Drain(); err != nil {
			b.NC.Close()
		} else {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.NC.Close()
			}
		}
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.log.Info("embedded nats stopped")
	}
}
