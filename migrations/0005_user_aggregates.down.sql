-- Reverts 0005_user_aggregates.up.sql. Not applied automatically: run by hand to roll back.
DROP TABLE IF EXISTS aggregate_marks;
DROP TABLE IF EXISTS user_aggregates;
