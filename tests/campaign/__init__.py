"""Tests of the campaign engine (``airflow_provider_smsnexus.campaign``): ledger, sender, reconciliation."""
