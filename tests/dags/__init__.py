"""Tests of the example DAGs (``dags/``)."""
