"""What each extra of an SMS Nexus connection takes, and reading one: its value, or a ``ValueError`` naming it.

Every rule is written once, here: :meth:`SMSNexusConnectionConfig.from_connection
<airflow_provider_smsnexus.hooks._config.SMSNexusConnectionConfig.from_connection>` reads each extra with it
(and turns the ``ValueError`` into an :class:`~airflow_provider_smsnexus.exceptions.SMSNexusError` naming the
connection), and the configuration checks its numbers against the same :data:`NUMBER_RULES` when it is built
directly. A value's text is repeated in the error, except a proxy's (a proxy URL may hold a password).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

#: The schemes a proxy URL may have (``socks*`` need PySocks, and only the sync hook speaks them).
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
#: The key of the ``proxies`` extra that lists the hosts reached without a proxy (as ``NO_PROXY`` does).
NO_PROXY_KEY = "no_proxy"
_PROXIES_EXPECTED = (
    'expected a mapping of URL scheme to proxy URL, such as {"https": "http://proxy.example:3128", '
    '"no_proxy": "localhost,10.0.0.0/8"}, as an object or as JSON text'
)
_VERIFY_EXPECTED = "expected true, false, or the path of a CA bundle file or certificate directory"


@dataclass(frozen=True)
class NumberRule:
    """
    An extra that takes a number: a JSON number or its text, finite, never a boolean.

    :param minimum: the smallest value allowed.
    :param above: the minimum itself is refused (the value must be above it).
    :param whole: a whole number (``3``, ``3.0``, ``"3"``), returned as an ``int``.
    :param unit: what the number counts, for the message (``"seconds"``).
    """

    minimum: float
    above: bool = False
    whole: bool = False
    unit: str = ""

    @property
    def expected(self) -> str:
        """What the extra takes, as the error says it."""
        what = "a whole number" if self.whole else "a number"
        unit = f" of {self.unit}" if self.unit else ""
        bound = f"above {self.minimum:g}" if self.above else f"{self.minimum:g} or more"
        return f"{what}{unit}, {bound}"

    def read(self, name: str, raw: Any) -> float | int:
        """The extra ``name`` given as ``raw``, as a number within the rule."""
        value = _number(raw)
        if value is None or (self.whole and not value.is_integer()):
            raise ValueError(f"{name}={raw!r}: expected {self.expected}")
        number = int(value) if self.whole else value
        self.check(name, number)
        return number

    def check(self, name: str, value: float) -> None:
        """Raise ``ValueError`` naming ``name`` when ``value`` is outside the rule."""
        inside = value > self.minimum if self.above else value >= self.minimum
        if not inside or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{name}={value!r}: expected {self.expected}")


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):  # JSON true is not 1 second
        return None
    if isinstance(raw, str):
        raw = raw.strip()
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


#: Every numeric extra and what it takes.
NUMBER_RULES: dict[str, NumberRule] = {
    "timeout": NumberRule(0, above=True, unit="seconds"),
    "max_retries": NumberRule(0, whole=True),
    "send_rate_limit": NumberRule(1, whole=True),
    "read_rate_limit": NumberRule(1, whole=True),
    "rate_limit_period": NumberRule(0, above=True, unit="seconds"),
    "retry_backoff": NumberRule(0, unit="seconds"),
    "retry_backoff_max": NumberRule(0, unit="seconds"),
    "max_rate_limit_wait": NumberRule(0, unit="seconds"),
    "server_clock_uncertainty": NumberRule(0, unit="seconds"),
    "listing_delay": NumberRule(0, unit="seconds"),
}
#: The extras that take text: the message list's date-range parameters.
TEXT_EXTRAS = ("date_from_param", "date_to_param")


def read_text(name: str, raw: Any) -> str:
    """A text extra (a query parameter's name): a string that is not blank."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{name}={raw!r}: expected text, a query parameter name such as 'start_date'")
    return raw.strip()


def read_verify(raw: Any) -> bool | str:
    """
    The ``verify`` extra: a boolean (also as the text ``"true"`` / ``"false"``, any case), or the path of a CA
    bundle file or certificate directory that exists.
    """
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"verify={raw!r}: {_VERIFY_EXPECTED}")
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if not (os.path.isfile(text) or os.path.isdir(text)):
        raise ValueError(f"verify={raw!r}: the path does not exist on this machine; {_VERIFY_EXPECTED}")
    return text


def read_proxies(raw: Any) -> dict[str, str] | None:
    """
    The ``proxies`` extra: a mapping (or its JSON text) of ``requests``-style keys (``"https"``,
    ``"https://host"``, ``"all"``) to proxy URLs, and optionally ``no_proxy``: the hosts to reach directly, as
    comma-separated text or a list. Keys are read in lower case; an entry without a value is dropped.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValueError(f"proxies: text that is not JSON; {_PROXIES_EXPECTED}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"proxies: a {type(raw).__name__}; {_PROXIES_EXPECTED}")
    proxies: dict[str, str] = {}
    for key, value in raw.items():
        key = str(key).strip().lower()
        if value is None or value == "":
            continue
        if key == NO_PROXY_KEY:
            proxies[key] = _no_proxy(value)
            continue
        if not isinstance(value, str):
            raise ValueError(
                f"proxies: the proxy for {key!r} is a {type(value).__name__}; expected a proxy URL such as "
                "http://proxy.example:3128"
            )
        scheme = value.split("://", 1)[0].strip().lower() if "://" in value else "http"
        if scheme not in PROXY_SCHEMES:
            # The URL itself is not repeated: it may hold the proxy's password.
            raise ValueError(
                f"proxies: the proxy for {key!r} has the scheme {scheme!r}; expected a proxy URL with the scheme "
                "http, https or socks5"
            )
        proxies[key] = value.strip()
    return proxies or None


def _no_proxy(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValueError(
            f"proxies: no_proxy is a {type(value).__name__}; expected the hosts to reach without a proxy, as "
            'text ("localhost,10.0.0.0/8") or a list of hosts'
        )
    return value
