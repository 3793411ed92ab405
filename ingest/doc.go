// Package ingest moves events from NATS JetStream into ClickHouse.
//
// Workers share one durable pull consumer (eventv1.ConsumerIngest) of the
// AB_EVENTS stream, in this process and across processes. Each worker
// fetches up to BatchSize messages (and about BatchSize events' worth of
// bytes), waiting at most FlushInterval, decodes them, inserts one
// ClickHouse batch per table, and acknowledges the messages only after
// ClickHouse has accepted the insert.
//
// A message holds one event (ab.assignment.v1, ab.result.v1: the single
// endpoints) or up to eventv1.MaxBatchEvents of them, one JSON event per
// line (ab.assignment.batch.v1, ab.result.batch.v1: POST /events).
// JetStream's cost is per message, so batch messages are what let ingestion
// run at ClickHouse's pace rather than NATS's. All events of a message are
// inserted in the same batch and acknowledged by its one ack.
//
// Ack rules:
//   - decoded and inserted: Ack.
//   - undecodable or failing validation (a permanent error): copied with the
//     reason to the AB_DEADLETTER stream, counted in
//     abacus_ingest_failures_total{reason="invalid"}, then Term; it never
//     blocks the stream. If the copy cannot be stored the message is naked
//     instead, so a poison event is never dropped without a trace. In a
//     batch message each invalid line is dead-lettered alone (with its line
//     number in a header, and a message id made of the stream sequence and
//     the line, so a redelivery does not copy it twice) and the valid lines
//     are stored.
//   - ClickHouse error (transient): NakWithDelay with a growing backoff, so
//     JetStream redelivers the whole batch when ClickHouse is back.
//
// # Counting each event once
//
// An event acknowledged to a client is counted once, by three mechanisms,
// one per place where a copy can appear:
//
//  1. Client retries. The API publishes every event of the single
//     endpoints with its event_id as the JetStream message id, and every
//     batch message with a digest of its events' ids; a retry inside the
//     stream's duplicate window (NATS_DUPLICATE_WINDOW, two minutes by
//     default) that sends the same event, or the same batch, is dropped by
//     JetStream and reported as a duplicate. A retry that regroups events
//     (some of a batch again, or in another batch) is stored again and
//     falls under point 3.
//  2. Redelivery. JetStream redelivers a message whose ack did not arrive
//     within AckWait: its process died after the insert, or the ack was lost.
//     Such a message carries NumDelivered > 1 -- unless the NATS server died
//     too (the embedded server dies with its process) and lost the record of
//     the delivery. So before an insert ingest makes sure that the
//     ingest_intents table holds a mark at or above the batch's highest
//     stream sequence (it reserves ten batches ahead, so most inserts write
//     no mark), and at start it reads the highest one recorded: a message
//     is suspect when it was
//     redelivered or its sequence is at or below that mark. Before inserting
//     suspect messages, ingest asks ClickHouse which of their events'
//     (test_id, event_id) pairs are stored and inserts only the others; the
//     check is per event, so it holds for batch messages as for single ones.
//     The lookup is sound because a redelivery happens only after AckWait,
//     and every insert is bounded by InsertTimeout < AckWait: by then the
//     earlier insert has either committed (and is visible) or failed. A
//     ClickHouse insert of one block is atomic, and all rows of one event are
//     in one block (one batch, one partition), so an event is never half
//     stored. The lookup reads only the sort-key prefix test_id and happens
//     only for redeliveries (crashes, outages), never on the hot path.
//  3. Everything else (a client retry after the duplicate window or in
//     another grouping, a redelivery racing an insert slower than AckWait):
//     the analyzer counts
//     each event_id once when it aggregates (GROUP BY event_id before any
//     per-user step), so a stored duplicate cannot change a result.
//
// Optional data (migration 0004): an assignment's attributes go to
// assignment_attributes and a result's covariates to result_covariates, one
// row per event (per metric with a covariate), in inserts made before the
// event's main rows. The lookup of point 2 reads only the main tables, so an
// event found there is complete; an event whose optional rows were stored
// but whose main insert failed is inserted again whole, and the analyzer
// reads the optional tables once per event_id as well.
//
// This holds on ClickHouse 18.16 and on current releases alike: it relies on
// neither ReplacingMergeTree merges (which happen at an unknown time) nor
// insert-block deduplication (which 18.16 offers only for replicated tables).
//
// Timing: all the work on one fetched batch (dead-lettering, lookups, the
// intent, the insert) shares one deadline, InsertTimeout, and Validate
// requires AckWait >= InsertTimeout + FlushInterval + 1s, so a message is
// redelivered only after the work on its earlier delivery has ended. An
// insert that failed without a verdict (a timeout, a connection lost after
// the data was sent) may still commit on the server: its messages are naked
// with a delay of at least AckWait, so their lookup runs after it settled.
//
// Shutdown: Run stops fetching when its context is done, finishes the batch
// in hand (bounded by InsertTimeout) and returns after every worker has
// exited.
//
// The package never serves HTTP and never computes statistics; it does not
// import api or analysis.
package ingest
