"""Tests of the hooks and their private core (``airflow_provider_smsnexus.hooks``)."""
