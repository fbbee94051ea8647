"""Tests of the sensors (``airflow_provider_smsnexus.sensors``)."""
