"""Where files go: the one rule that tells a local path (or ``file://`` / ``local://`` URL) from an
object-storage URL (``s3://``, ``gs://``...) for every reader and writer, and the provider's own folder under
AIRFLOW_HOME."""

from __future__ import annotations

import os
from pathlib import Path

#: URL schemes that name the local file system (``local://`` is Airflow ObjectStoragePath's name for it).
LOCAL_SCHEMES = ("file", "local")


def local_path(name: str | os.PathLike[str]) -> str | None:
    """
    The local file a path or ``file://`` / ``local://`` URL names, or None for an object-storage URL.

    Pure: nothing is read; ``~`` and relative paths are returned as given.

    :param name: a path or a URL.
    """
    text = os.fspath(name)
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    return rest if scheme.lower() in LOCAL_SCHEMES else None


def provider_home() -> Path:
    """
    The folder of the provider's own files: ``$AIRFLOW_HOME/smsnexus`` (``~/airflow/smsnexus`` when
    AIRFLOW_HOME is not set), which outlives a reboot and belongs to the Airflow user.

    Reads the environment only; nothing is created.
    """
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(home).expanduser() / "smsnexus"
