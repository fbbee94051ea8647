"""Exports of SMS Nexus history: one extraction core (``extraction``, ``window``, ``stream``) and its two
destinations, Parquet files (``smsnexus_to_parquet``) and SQL tables (``smsnexus_to_sql``)."""

from __future__ import annotations
