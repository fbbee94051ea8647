"""``python -m airflow_provider_smsnexus.emulator``: the same as ``smsnexus-emulator``."""

from __future__ import annotations

import sys

from airflow_provider_smsnexus.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
