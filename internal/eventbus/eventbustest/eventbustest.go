// Package eventbustest runs a real in-process nats-server with JetStream for
// tests, on a random port with its store in the test's temporary folder.
package eventbustest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/abacus-ab/abacus/internal/eventbus"
)

// RunServer starts a JetStream server that shuts down when the test ends.
// Connect to it with s.ClientURL().
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerAt(t, -1, t.TempDir())
}

// RunServerAt starts a JetStream server on port (-1: random) with its store
// in dir, so that a test can restart a server on the same port and store.
func RunServerAt(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("creating nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server did not become ready in 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s with a provisioned event stream and buckets; the
// connection is closed when the test ends.
func Connect(t testing.TB, s *server.Server) *eventbus.Bus {
	t.Helper()
	return ConnectURL(t, s.ClientURL())
}

// ConnectURL is Connect for a server's URL, for tests that open several
// connections (replicas) to one server.
func ConnectURL(t testing.TB, url string) *eventbus.Bus {
	t.Helper()
	bus, err := eventbus.Connect(context.Background(), eventbus.Config{URL: url}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("connecting to nats-server: %v", err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Provision(context.Background()); err != nil {
		t.Fatalf("provisioning JetStream: %v", err)
	}
	return bus
}
