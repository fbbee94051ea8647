"""The SQLAlchemy engine of an Airflow SQL connection, for the stores the provider keeps in a database."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def connection_engine(conn_id: str, *, parameter: str) -> Engine:
    """
    The engine of an Airflow connection whose hook offers ``get_sqlalchemy_engine()`` (PostgreSQL, MySQL, ...),
    with ``pool_pre_ping`` so that a connection the database dropped is replaced, not used.

    :param conn_id: the connection id.
    :param parameter: the parameter that named it, for the error.
    :raises SMSNexusError: the connection's hook gives no SQLAlchemy engine.
    """
    from airflow.sdk import BaseHook

    from airflow_provider_smsnexus.exceptions import SMSNexusError

    hook = BaseHook.get_connection(conn_id).get_hook()
    get_engine = getattr(hook, "get_sqlalchemy_engine", None)
    if get_engine is None:
        raise SMSNexusError(
            f"{parameter}={conn_id!r} is a {type(hook).__name__} connection, which gives no SQLAlchemy "
            "engine: use a SQL database connection (PostgreSQL, MySQL, ...)."
        )
    return get_engine(engine_kwargs={"pool_pre_ping": True})
