"""Tests of the pure utilities (``airflow_provider_smsnexus.utils``)."""
