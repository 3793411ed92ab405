-- Events as ingest stores them: one row per assignment event, one row per
-- (result event, metric). Rows keep the event id and the JetStream stream
-- sequence so that duplicates from at-least-once delivery can be found.
-- ORDER BY starts with test_id: every analysis query reads one test.
-- Types are those that ClickHouse 18.16 and current releases both accept.
CREATE TABLE IF NOT EXISTS assignments (
    test_id     String,
    variant_id  String,
    user_id     String,
    event_id    String,
    event_time  DateTime,
    stream_seq  UInt64,
    ingested_at DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (test_id, variant_id, user_id);

CREATE TABLE IF NOT EXISTS results (
    test_id     String,
    variant_id  String,
    user_id     String,
    metric      String,
    value       Float64,
    event_id    String,
    event_time  DateTime,
    stream_seq  UInt64,
    ingested_at DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (test_id, metric, variant_id, user_id);
