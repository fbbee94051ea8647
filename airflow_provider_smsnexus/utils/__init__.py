"""Pure helpers with no I/O, shared by the client and where stated the emulator: segments, phone
numbers, rate-limit arithmetic, balance arithmetic, path rules."""

from __future__ import annotations
