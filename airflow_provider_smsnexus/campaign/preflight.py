"""Pre-flight checks before a campaign's first send: every sender is an active number of the account with the
capability its rows need, and the estimated credits fit the balance."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from airflow_provider_smsnexus.exceptions import SMSNexusCampaignError
from airflow_provider_smsnexus.utils.phone import listed_number

if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence

    from airflow_provider_smsnexus.campaign.model import CampaignRow
    from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook


def preflight(
    hook: SMSNexusHook, rows: Sequence[CampaignRow], credits_estimated: int, log: logging.Logger
) -> None:
    """
    Check, before the first send, that every sender can send what its rows need and the credits suffice.

    :raises SMSNexusCampaignError: saying what is wrong; nothing has been sent.
    """
    needs: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        needs[row.from_number or ""]["mms" if row.media_url else "sms"] += 1
    account = {}
    for number in hook.get_phone_numbers():
        normalised = listed_number(number.get("number")) if isinstance(number, dict) else None
        if normalised:
            account[normalised] = number
    problems = []
    for sender, kinds in sorted(needs.items()):
        info = account.get(sender)
        if info is None:
            problems.append(
                f"{sender} is not a number of this SMS Nexus account "
                f"(its numbers: {', '.join(sorted(account)) or 'none'})"
            )
            continue
        status = info.get("status", "active")
        if status != "active":
            problems.append(f"{sender} is {status!r}, not active")
        capabilities = info.get("capabilities") or ["sms"]
        for kind, count in sorted(kinds.items()):
            if kind not in capabilities:
                problems.append(
                    f"{sender} cannot send {kind.upper()} (capabilities: {', '.join(capabilities)}) "
                    f"but {count} row(s) need it"
                )
    if problems:
        raise SMSNexusCampaignError("Pre-flight check failed, nothing was sent: " + "; ".join(problems))
    balance = hook.get_balance().get("credits")
    if isinstance(balance, (int, float)) and not isinstance(balance, bool) and credits_estimated > balance:
        raise SMSNexusCampaignError(
            f"Pre-flight check failed, nothing was sent: the {len(rows)} messages need about "
            f"{credits_estimated} credits but the balance is {balance}. Top up, or send fewer rows."
        )
    log.info(
        "Pre-flight check passed: %d messages, about %d credits of %s", len(rows), credits_estimated, balance
    )
