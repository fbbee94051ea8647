"""Tests that run the provider under real Airflow executors (LocalExecutor, CeleryExecutor)."""
