"""The emulator's tenants: accounts (one per API token) with their credits, plan, daily usage and
phone numbers, kept by an :class:`AccountBook`; authentication by token; and the account endpoints
``/api/balance`` and ``/api/phone-numbers``. Tokens are secrets: never returned, logged or put in a URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.core import SECONDS_PER_DAY
from airflow_provider_smsnexus.emulator.store import MessageStore, StringTable, iso_utc
from airflow_provider_smsnexus.emulator.validation import E164, EmulatorHTTPError, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock, SettingsInForce

#: Numbers of a new account unless others are given: (number, capabilities, status).
DEFAULT_NUMBERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("+12125550100", ("sms", "mms"), "active"),
    ("+12125550101", ("sms",), "active"),
    ("+12125550102", ("sms",), "inactive"),
)


@dataclass
class PhoneNumber:
    """A number of an account.

    :param id: public id.
    :param number: E.164 number.
    :param capabilities: ``sms`` and/or ``mms``.
    :param status: ``active`` or another word (then it cannot send).
    :param created_at: epoch seconds (server clock).
    """

    id: int
    number: str
    capabilities: list[str]
    status: str
    created_at: float
    carrier: str = "bulkvs"

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "number": self.number,
            "carrier": self.carrier,
            "capabilities": list(self.capabilities),
            "status": self.status,
            "created_at": iso_utc(self.created_at),
        }


@dataclass
class Account:
    """One API token's tenant.

    :param id: account id (used by the inspection API; tokens never appear in URLs).
    :param token: the Bearer token (never logged, never returned).
    """

    id: int
    token: str = field(repr=False)
    credits: int
    plan: str
    numbers: list[PhoneNumber]
    store: MessageStore
    suspended: bool = False
    credits_used_today: int = 0
    usage_day: int = 0
    opted_out: set[str] = field(default_factory=set)

    def number(self, value: str) -> PhoneNumber | None:
        """The account's number ``value``, or None.

        :param value: E.164 number.
        """
        return next((item for item in self.numbers if item.number == value), None)

    def summary(self) -> dict[str, Any]:
        """Inspection view of the account (without its token)."""
        return {
            "id": self.id,
            "credits": self.credits,
            "plan": self.plan,
            "credits_used_today": self.credits_used_today,
            "suspended": self.suspended,
            "numbers": [item.to_dict() for item in self.numbers],
            "messages": len(self.store),
            "opted_out": sorted(self.opted_out),
        }

    def roll_day(self, today: int) -> None:
        """Start a new day of usage when ``today`` is another day than the one counted so far.

        :param today: the server's current day (see :meth:`.ServerClock.today`).
        """
        if today != self.usage_day:
            self.usage_day = today
            self.credits_used_today = 0


@dataclass(eq=False)
class AccountBook:
    """The accounts of a run, by id and by token, and the string tables their messages share.

    :param settings: the settings in force (credits and plan of a new account).
    :param clock: the server's clock (when a number was added, the day of usage).
    :param ids: the id counters (accounts, numbers, conversations).
    """

    settings: SettingsInForce
    clock: ServerClock
    ids: IdCounters
    #: Every account by id, in creation order.
    by_id: dict[int, Account] = field(default_factory=dict, init=False)
    _by_token: dict[str, Account] = field(default_factory=dict, init=False, repr=False)
    # Phone numbers and bodies are interned once for all accounts of the run.
    _numbers: StringTable = field(default_factory=StringTable, init=False, repr=False)
    _bodies: StringTable = field(default_factory=StringTable, init=False, repr=False)

    def add_account(
        self,
        token: str,
        *,
        credits: int | None = None,
        plan: str | None = None,
        numbers: Iterable[str | dict[str, Any]] | None = None,
        suspended: bool = False,
    ) -> Account:
        """Create an account for ``token``.

        :param token: its Bearer token (must be new).
        :param credits: starting credits (default: the settings' ``initial_credits``).
        :param plan: plan name (default: the settings' ``plan``).
        :param numbers: E.164 strings (sms+mms, active) or dicts with ``number``, ``capabilities``,
            ``status``; default the three numbers of :data:`DEFAULT_NUMBERS`.
        :param suspended: answer 403 to everything.
        """
        if not isinstance(token, str) or not token:
            raise ValidationFailed({"token": ["The token field is required."]})
        if token in self._by_token:
            raise ValidationFailed({"token": ["The token has already been taken."]})
        now = self.clock.now()
        settings = self.settings.current
        specs: list[dict[str, Any]] = []
        if numbers is None:
            specs = [{"number": n, "capabilities": list(c), "status": s} for n, c, s in DEFAULT_NUMBERS]
        else:
            for item in numbers:
                specs.append({"number": item} if isinstance(item, str) else dict(item))
        phone_numbers = []
        for spec in specs:
            if not isinstance(spec.get("number"), str) or not E164.match(spec["number"]):
                raise ValidationFailed({"numbers": [f"{spec.get('number')!r} is not an E.164 number."]})
            phone_numbers.append(
                PhoneNumber(
                    id=self.ids.take("number"),
                    number=spec["number"],
                    capabilities=list(spec.get("capabilities", ["sms", "mms"])),
                    status=spec.get("status", "active"),
                    created_at=now,
                )
            )
        account = Account(
            id=self.ids.take("account"),
            token=token,
            credits=settings.initial_credits if credits is None else int(credits),
            plan=plan or settings.plan,
            numbers=phone_numbers,
            store=MessageStore(self._numbers, self._bodies, lambda: self.ids.take("conversation")),
            suspended=suspended,
            usage_day=int(now // SECONDS_PER_DAY),
        )
        self.by_id[account.id] = account
        self._by_token[token] = account
        return account

    def account(self, account_id: int) -> Account:
        """The account with ``account_id``; a 404 when there is none.

        :param account_id: account id.
        """
        account = self.by_id.get(account_id)
        if account is None:
            raise EmulatorHTTPError(404, f"Account {account_id} not found")
        return account

    def account_at(self, account_id: str) -> Account:
        """The account a URL path segment names (``/_emulator/accounts/<id>/...``); a 404 for any other text.

        :param account_id: the path segment.
        """
        if not account_id.isdigit():
            raise EmulatorHTTPError(404, f"Account {account_id} not found")
        return self.account(int(account_id))

    def update_account(self, account_id: int, changes: dict[str, Any]) -> Account:
        """Change an account's ``credits``, ``plan``, ``suspended`` or ``credits_used_today``.

        :param account_id: account id.
        :param changes: field -> value.
        """
        account = self.account(account_id)
        kinds: dict[str, type] = {"credits": int, "credits_used_today": int, "plan": str, "suspended": bool}
        errors: dict[str, list[str]] = {}
        for name, value in changes.items():
            if name not in kinds:
                errors[name] = [f"The {name} field cannot be changed."]
            elif not isinstance(value, kinds[name]) or (kinds[name] is int and isinstance(value, bool)):
                errors[name] = [f"The {name} field must be of type {kinds[name].__name__}."]
        if errors:
            raise ValidationFailed(errors)
        for name, value in changes.items():
            setattr(account, name, value)
        return account

    def authenticate(self, token: str | None) -> Account | None:
        """The account of a Bearer token, or None.

        :param token: the token from the Authorization header.
        """
        return self._by_token.get(token) if token else None

    def balance(self, account: Account) -> dict[str, Any]:
        """``GET /api/balance`` data.

        :param account: the caller.
        """
        account.roll_day(self.clock.today())
        return {
            "credits": account.credits,
            "currency": "credits",
            "plan": account.plan,
            "credits_used_today": account.credits_used_today,
        }

    def phone_numbers(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/phone-numbers`` data.

        :param account: the caller.
        """
        return [item.to_dict() for item in account.numbers]
