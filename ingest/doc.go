// Package ingest moves events from NATS JetStream into ClickHouse.
//
// Workers share one durable pull consumer (eventv1.ConsumerIngest) of the
// AB_EVENTS stream, in this process and across processes. Each worker
// fetches up to BatchSize messages, waiting at most FlushInterval, decodes
// them, inserts one ClickHouse batch per table, and acknowledges the messages
// only after ClickHouse has accepted the insert.
//
// Ack rules:
//   - decoded and inserted: Ack.
//   - undecodable or failing validation (a permanent error): Term, counted in
//     abacus_ingest_failures_total{reason="invalid"}; it never blocks the stream.
//   - ClickHouse error (transient): NakWithDelay with a growing backoff, so
//     JetStream redelivers the whole batch when ClickHouse is back.
//
// Delivery into ClickHouse is at least once: a process killed between the
// insert and the acks, or an ack lost on the way, makes JetStream redeliver
// messages that are already stored. Every row keeps its event_id and
// stream_seq so that duplicates can be found; the analyzer counts each
// event_id once.
//
// Shutdown: Run stops fetching when its context is done, finishes the batch
// in hand (insert and acks, bounded by ShutdownTimeout) and returns after
// every worker has exited.
//
// The package never serves HTTP and never computes statistics; it does not
// import api or analysis.
package ingest
