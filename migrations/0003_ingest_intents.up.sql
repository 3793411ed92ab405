-- Ingest writes the highest stream sequence of a batch here BEFORE inserting
-- the batch. After a crash, every message at or below the highest recorded
-- sequence may already be stored, so ingest looks those up before inserting
-- them (see ingest/doc.go). ReplacingMergeTree keeps one row per consumer
-- once parts merge; readers take max(), which is right before and after.
CREATE TABLE IF NOT EXISTS ingest_intents (
    consumer   String,
    stream_seq UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(stream_seq)
ORDER BY consumer;
