// Package api is the HTTP front of Abacus: an Echo server that manages test
// definitions (stored in the JetStream KV registry), assigns users to
// variants, and publishes assignment and result events to NATS JetStream.
//
// Delivery: a write endpoint answers 2xx only after JetStream has
// acknowledged the event (stored it on disk, replicated where configured).
// Each event carries a message id, so a retried publish within the stream's
// two-minute duplicate window is stored once. When NATS cannot be reached a
// write answers 503 within the publish timeout; nothing is acknowledged that
// was not stored.
//
// Analysis results come from the analyzer role: the latest report is read
// from the AB_REPORTS bucket, and a fresh one is requested over NATS
// request-reply when the stored one is older than the caller accepts.
//
// POST /power is a pure function of the request: the API plans it in
// process with analysis/stats.Plan (a pure leaf without I/O) and caches the
// answer in the general layer.
//
// The package never writes to ClickHouse and holds no statistics of its
// own; it does not import ingest or analysis (only the pure analysis/stats).
package api
