-- Reverts 0002_analysis_snapshots.up.sql. Not applied automatically: run by hand to roll back.
DROP TABLE IF EXISTS analysis_snapshots;
