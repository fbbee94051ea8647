"""Hostile tests: faults, kills, races and adversarial input against the emulator."""
