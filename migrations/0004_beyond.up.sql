-- Data for the analyses beyond the fixed-horizon tests (issue 5): CUPED
-- covariates of results and segment attributes of assignments.
--
-- They live in tables of their own rather than in new columns of results
-- and assignments: ClickHouse 18.16 has no ALTER TABLE ... ADD COLUMN IF NOT
-- EXISTS, and every migration must be idempotent (two replicas may apply
-- it at once). Ingest writes a row here only for an event that carries
-- covariates or attributes, before it writes the event's main rows; a
-- redelivered event may therefore be stored here twice, and the analysis
-- reads one row per event_id.
-- Types are those that ClickHouse 18.16 and current releases both accept.

-- One row per (result event, metric with a covariate): the covariate of
-- that metric for that event.
CREATE TABLE IF NOT EXISTS result_covariates (
    test_id     String,
    variant_id  String,
    user_id     String,
    metric      String,
    covariate   Float64,
    event_id    String,
    event_time  DateTime,
    stream_seq  UInt64,
    ingested_at DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (test_id, metric, user_id);

-- One row per assignment event with attributes, as parallel arrays (18.16
-- has no Map type): attribute_values[i] is the value of attribute_keys[i].
CREATE TABLE IF NOT EXISTS assignment_attributes (
    test_id          String,
    variant_id       String,
    user_id          String,
    attribute_keys   Array(String),
    attribute_values Array(String),
    event_id         String,
    event_time       DateTime,
    stream_seq       UInt64,
    ingested_at      DateTime DEFAULT now()
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (test_id, user_id);
