"""Old import path of the campaign helpers, kept so that existing imports keep working.

The code lives in :mod:`airflow_provider_smsnexus.campaign` (``sources``, ``render``, ``plan``, ``report``).
"""

from __future__ import annotations

from airflow_provider_smsnexus.campaign.plan import (
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    opted_out_numbers,
    partition_of,
)
from airflow_provider_smsnexus.campaign.render import (
    MAX_MESSAGE_LENGTH,
    MAX_RAW_LENGTH,
    MessageTemplate,
    TemplateRow,
    media_url_problem,
    message_hash,
    message_problem,
    normalise_body,
    raw_text,
)
from airflow_provider_smsnexus.campaign.report import REPORT_COLUMNS, write_report
from airflow_provider_smsnexus.campaign.sources import (
    is_storage_path,
    load_numbers,
    load_table,
    read_table_file,
)
from airflow_provider_smsnexus.utils.times import created_at_of as parse_created_at

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "MAX_RAW_LENGTH",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "REPORT_COLUMNS",
    "MessageTemplate",
    "TemplateRow",
    "is_storage_path",
    "load_numbers",
    "load_table",
    "media_url_problem",
    "message_hash",
    "message_problem",
    "normalise_body",
    "opted_out_numbers",
    "parse_created_at",
    "partition_of",
    "raw_text",
    "read_table_file",
    "write_report",
]
