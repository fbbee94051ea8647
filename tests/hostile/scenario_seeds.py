"""The seeds a scenario test runs, and the log line of each scenario, for both scenario runners.

``SMSNEXUS_SCENARIO_SEED`` replays one seed; ``SMSNEXUS_SCENARIOS=n`` draws ``n`` random ones from
``SMSNEXUS_SCENARIO_BASE`` (random unless given: every xdist worker then draws the same); otherwise CI's fixed
set. ``SMSNEXUS_SCENARIO_LOG`` names a file that gets one JSON line per scenario.
"""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.hostile.scenarios import ScenarioResult


def seeds_of_this_run(ci_seeds: Sequence[int]) -> list[int]:
    """The seeds of this run: one replayed, ``SMSNEXUS_SCENARIOS`` random ones, or ``ci_seeds``."""
    if os.environ.get("SMSNEXUS_SCENARIO_SEED"):
        return [int(os.environ["SMSNEXUS_SCENARIO_SEED"])]
    count = int(os.environ.get("SMSNEXUS_SCENARIOS") or 0)
    if count:
        base = os.environ.get("SMSNEXUS_SCENARIO_BASE")
        rng = random.Random(int(base) if base else random.SystemRandom().getrandbits(32))
        return [rng.getrandbits(32) for _ in range(count)]
    return list(ci_seeds)


def log_scenario(scenario: Any, result: ScenarioResult, **extra: Any) -> None:
    """Append the scenario's line to ``SMSNEXUS_SCENARIO_LOG`` when it is set (its log only when it failed)."""
    path = os.environ.get("SMSNEXUS_SCENARIO_LOG")
    if not path:
        return
    line = {
        **extra,
        "seed": scenario.seed,
        "scenario": scenario.describe(),
        "seconds": round(result.seconds, 1),
        "counts": dict(result.counts),
        "violations": [str(v) for v in result.violations],
        "log": result.log if result.violations else [],
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(line) + "\n")
