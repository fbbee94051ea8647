"""Tests of the notifiers (``airflow_provider_smsnexus.notifications``)."""
