"""``POST /api/sms/send``: validation as the reference and Laravel word it, a charge per segment counted
by the emulator's own :mod:`~airflow_provider_smsnexus.emulator.segments` (or the MMS cost), and a
``queued`` message handed to the :class:`~.lifecycle.Lifecycle`. Texts from contacts come in through
:mod:`~airflow_provider_smsnexus.emulator.inbound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.segments import count_segments
from airflow_provider_smsnexus.emulator.store import ORIGIN_CODES, OUTBOUND, QUEUED
from airflow_provider_smsnexus.emulator.validation import (
    E164,
    MAX_MESSAGE_LENGTH,
    ValidationFailed,
    optional_url,
    required_string,
)

if TYPE_CHECKING:
    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock, SettingsInForce
    from airflow_provider_smsnexus.emulator.lifecycle import Lifecycle


@dataclass(eq=False)
class Sending:
    """Accepts, charges and stores sends.

    :param settings: the settings in force (``mms_cost``).
    :param clock: the server's clock (``created_at``, the day of usage).
    :param ids: the id counters (messages).
    :param lifecycle: what moves a stored message on from ``queued``.
    """

    settings: SettingsInForce
    clock: ServerClock
    ids: IdCounters
    lifecycle: Lifecycle

    def send(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/sms/send``: validate, charge per segment (or the MMS cost), store ``queued``.

        :param account: the caller.
        :param payload: the decoded JSON body.
        :return: the message in the reference's send-answer shape.
        """
        data = payload if isinstance(payload, dict) else {}
        errors: dict[str, list[str]] = {}
        sender = required_string(data, "from", errors)
        recipient = required_string(data, "to", errors)
        text = required_string(data, "message", errors)
        media_url = optional_url(data, "media_url", errors)
        if sender is not None:
            number = account.number(sender)
            if not E164.match(sender):
                errors["from"] = ["The from field must be a phone number in E.164 format."]
            elif number is None:
                errors["from"] = ["The from number is not a phone number of your account."]
            elif number.status != "active":
                errors["from"] = ["The from number is not active."]
            elif media_url is not None and "mms" not in number.capabilities:
                errors["media_url"] = ["The from number cannot send MMS."]
            elif "sms" not in number.capabilities:
                errors["from"] = ["The from number cannot send SMS."]
        if recipient is not None and not E164.match(recipient):
            errors["to"] = ["The to field must be a phone number in E.164 format."]
        if text is not None and len(text) > MAX_MESSAGE_LENGTH:
            errors["message"] = [
                f"The message field must not be greater than {MAX_MESSAGE_LENGTH} characters."
            ]
        if errors:
            raise ValidationFailed(errors)
        assert sender is not None
        assert recipient is not None
        assert text is not None
        cost = int(self.settings.current.mms_cost) if media_url else count_segments(text)
        account.roll_day(self.clock.today())
        if account.credits < cost:
            raise ValidationFailed(
                {
                    "credits": [
                        f"Insufficient credits: this message needs {cost} and the balance is "
                        f"{account.credits}."
                    ]
                }
            )
        account.credits -= cost
        account.credits_used_today += cost
        row = account.store.append(
            message_id=self.ids.take("message"),
            created=int(self.clock.now()),
            direction=OUTBOUND,
            status=QUEUED,
            credits=cost,
            number=sender,
            contact=recipient,
            body=text,
            origin=ORIGIN_CODES["api"],
            media_url=media_url,
        )
        self.lifecycle.track(account, row)
        return account.store.message_dict(row, with_direction=False)
