"""Tests of the export transfers (``airflow_provider_smsnexus.transfers``)."""
