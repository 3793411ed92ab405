-- Reverts 0004_beyond.up.sql. Not applied automatically: run by hand to roll back.
DROP TABLE IF EXISTS assignment_attributes;
DROP TABLE IF EXISTS result_covariates;
