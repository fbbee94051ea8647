"""Which destinations are local files: the one rule that tells a local path (or ``file://`` /
``local://`` URL) from an object-storage URL (``s3://``, ``gs://``...) for every reader and writer."""

from __future__ import annotations

import os

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
