-- Reverts 0001_events.up.sql. Not applied automatically: run by hand to roll back.
DROP TABLE IF EXISTS results;
DROP TABLE IF EXISTS assignments;
