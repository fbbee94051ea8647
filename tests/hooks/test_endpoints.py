"""``hooks._endpoints``: the message list's page query and answer shape, shared by both hooks."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from airflow.models import Connection

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig
from airflow_provider_smsnexus.hooks._endpoints import message_page, message_page_query


def config(**extra) -> SMSNexusConnectionConfig:
    conn = Connection(
        conn_id="t",
        conn_type="smsnexus",
        password="SMSNEXUS-TEST-TOKEN-endpoints-0001",
        extra=json.dumps(extra),
    )
    return SMSNexusConnectionConfig.from_connection(conn)


def test_the_query_holds_filters_the_window_in_utc_and_paging():
    query = message_page_query(
        config(),
        page=3,
        per_page=50,
        status="delivered",
        direction="outbound",
        start_date="2026-03-08T13:00:00+01:00",
        end_date=datetime(2026, 3, 9, tzinfo=timezone.utc),
    )
    assert query["page"] == 3
    assert query["per_page"] == 50
    assert query["status"] == "delivered"
    assert query["direction"] == "outbound"
    assert "2026-03-08T12:00:00Z" in query.values()
    assert "2026-03-09T00:00:00Z" in query.values()


def test_the_window_uses_the_connections_parameter_names():
    query = message_page_query(
        config(date_from_param="from", date_to_param="to"),
        page=1,
        per_page=25,
        status=None,
        direction=None,
        start_date="2026-03-08",
        end_date=None,
    )
    assert query["from"] == "2026-03-08T00:00:00Z"
    assert "to" not in query
    assert "status" not in query


def test_a_bad_window_names_the_argument():
    with pytest.raises(SMSNexusError, match="end_date"):
        message_page_query(
            config(), page=1, per_page=25, status=None, direction=None, start_date=None, end_date="soon"
        )


def test_a_page_is_its_rows_and_meta():
    body = {"success": True, "data": [{"id": 1}], "meta": {"total": 1}}
    assert message_page(body) == {"data": [{"id": 1}], "meta": {"total": 1}}
    assert message_page({"success": True, "data": []}) == {"data": [], "meta": {}}
