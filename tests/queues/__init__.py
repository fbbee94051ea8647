"""Tests of SMS Nexus as a message queue of Airflow's common.messaging (``airflow_provider_smsnexus.queues``)."""
