"""Tests of the send operators (``airflow_provider_smsnexus.operators``)."""
