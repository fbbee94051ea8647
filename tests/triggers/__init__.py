"""Tests of the deferrable triggers (``airflow_provider_smsnexus.triggers``)."""
