"""The SMS Nexus hooks (``smsnexus``: the sync and async hooks) and their private core: connection
config, answers and errors, the retry driver, pagination, times and the server clock (``_*`` modules)."""

from __future__ import annotations
