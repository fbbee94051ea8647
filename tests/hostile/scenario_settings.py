"""The campaign engine's settings for every scenario, in one place: short leases, timeouts and waits, so that a
scenario's waits take seconds; and the server's listing lag turned into the operators' ``listing_delay``.

Adapt this module when the engine's parameters change: the runner takes every operator argument and every
connection extra it passes from here.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.hostile.scenario_model import Scenario


@dataclass(frozen=True)
class EngineSettings:
    """The engine's timing settings for every scenario, in one place: short, so that waits take seconds.

    :param lease_seconds: the operators' ``lease_seconds``.
    :param timeout: the connection's request timeout (a send held longer by the server is a read timeout).
    :param listing_margin: added to the server's listing lag for the operators' ``listing_delay``.
    :param min_listing_delay: the ``listing_delay`` of a server that lists at once.
    :param max_rate_limit_wait: the connection's bound on waiting out 429s.
    """

    lease_seconds: float = 4.0
    timeout: float = 2.0
    listing_margin: float = 0.5
    min_listing_delay: float = 1.0
    max_rate_limit_wait: float = 4.0

    def listing_delay(self, scenario: Scenario) -> float:
        """The bound within which the server lists a created message: its lag plus a margin."""
        return max(self.min_listing_delay, scenario.switches.late_visibility_ms / 1000 + self.listing_margin)

    def operator_kwargs(self, scenario: Scenario) -> dict[str, Any]:
        """The bulk operator's timing arguments (``listing_delay`` where the operator takes it)."""
        kwargs: dict[str, Any] = {"lease_seconds": self.lease_seconds}
        if "listing_delay" in operator_parameters():
            kwargs["listing_delay"] = self.listing_delay(scenario)
        return kwargs

    def connection_extras(self, scenario: Scenario, *, faulty: bool) -> dict[str, Any]:
        """The connection's extras (``listing_delay`` where the connection takes it); in a 429 storm the client
        believes in a budget the server does not give."""
        extras: dict[str, Any] = {
            "timeout": self.timeout,
            "retry_backoff": 0.01,
            "retry_backoff_max": 0.05,
            "max_rate_limit_wait": self.max_rate_limit_wait,
        }
        if "listing_delay" in connection_extras():
            extras["listing_delay"] = self.listing_delay(scenario)
        if faulty and scenario.switches.send_limit:
            extras.update(send_rate_limit=20, read_rate_limit=40, rate_limit_period=1)
        return extras

    def send_hold_ms(self) -> float:
        """A send answer held this long arrives after the client stopped waiting: a read timeout."""
        return (self.timeout + 0.6) * 1000


ENGINE = EngineSettings()


def operator_parameters() -> set[str]:
    """The keyword arguments the bulk operator takes (its own and its base class's)."""
    from airflow_provider_smsnexus.operators.sms import SMSNexusBulkSendOperator

    names: set[str] = set()
    for cls in SMSNexusBulkSendOperator.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            names |= set(inspect.signature(init).parameters)
    return names


def connection_extras() -> set[str]:
    """The extras the SMS Nexus connection reads (the fields of its parsed configuration)."""
    import dataclasses

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

    return {f.name for f in dataclasses.fields(SMSNexusConnectionConfig)}
