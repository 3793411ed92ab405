-- Reverts 0003_ingest_intents.up.sql. Not applied automatically: run by hand to roll back.
DROP TABLE IF EXISTS ingest_intents;
