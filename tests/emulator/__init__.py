"""Tests of the SMS Nexus emulator (``airflow_provider_smsnexus.emulator``)."""
