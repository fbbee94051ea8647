"""How many Hypothesis examples a property runs: its CI count, multiplied under the ``deep`` profile."""

from __future__ import annotations

import os

#: ``make test-deep`` sets HYPOTHESIS_PROFILE=deep: every property then draws this many times more examples.
DEEP_FACTOR = 10


def deep_examples(count: int) -> int:
    """``count`` on CI (fixed examples), ``count * DEEP_FACTOR`` under the ``deep`` profile (random ones)."""
    return count * DEEP_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else count
