-- Runs once, when the postgres service initialises an empty data volume (docker-entrypoint-initdb.d).
-- Airflow's metadata lives in the "airflow" database (POSTGRES_DB); the example export DAG loads
-- messages into this separate "warehouse" database with its own user.
CREATE USER warehouse WITH PASSWORD 'warehouse';
CREATE DATABASE warehouse OWNER warehouse;
