-- The analyzer's history: one row per run, metric and variant, written each
-- time a test is analyzed (timer or request). Control's row has no
-- comparison columns (NULL). GET .../analyze/history reads it.
-- Types are those that ClickHouse 18.16 and current releases both accept.
CREATE TABLE IF NOT EXISTS analysis_snapshots (
    test_id             String,
    computed_at         DateTime,
    metric              String,
    variant_id          String,
    control_variant_id  String,
    sample_size         Int64,
    mean                Nullable(Float64),
    absolute_difference Nullable(Float64),
    ci_lower            Nullable(Float64),
    ci_upper            Nullable(Float64),
    relative_difference Nullable(Float64),
    relative_ci_lower   Nullable(Float64),
    relative_ci_upper   Nullable(Float64),
    p_value             Nullable(Float64),
    p_value_adjusted    Nullable(Float64),
    decision            String,
    trigger             String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(computed_at)
ORDER BY (test_id, metric, computed_at, variant_id);
