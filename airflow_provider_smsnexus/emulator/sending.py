"""Messages entering the emulator: ``POST /api/sms/send`` (validation as the reference and Laravel
word it, a charge per segment counted by the emulator's own :mod:`~airflow_provider_smsnexus.emulator.segments`, or the MMS cost, and a
``queued`` message) and inbound texts from contacts (with STOP / START opt-out keywords).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.core import EmulatorCore
from airflow_provider_smsnexus.emulator.segments import count_segments
from airflow_provider_smsnexus.emulator.store import INBOUND, ORIGIN_CODES, OUTBOUND, QUEUED, RECEIVED
from airflow_provider_smsnexus.emulator.validation import (
    E164,
    MAX_MESSAGE_LENGTH,
    ValidationFailed,
    optional_url,
    required_string,
)

if TYPE_CHECKING:
    from airflow_provider_smsnexus.emulator.accounts import Account

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})


class SendingMixin(EmulatorCore):
    """Sending and receiving."""

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
        cost = int(self.settings.mms_cost) if media_url else count_segments(text)
        self._roll_day(account)
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
            message_id=self._take_id("message"),
            created=int(self.server_now()),
            direction=OUTBOUND,
            status=QUEUED,
            credits=cost,
            number=sender,
            contact=recipient,
            body=text,
            origin=ORIGIN_CODES["api"],
            media_url=media_url,
        )
        self.pending[account.id, row] = self.clock()
        return account.store.message_dict(row, with_direction=False)

    def receive(
        self, account: Account, from_number: Any, to_number: Any, body: Any, *, origin: str = "admin"
    ) -> dict[str, Any]:
        """Store an inbound message (a reply from ``from_number`` to the account's ``to_number``),
        apply STOP / START keywords and send ``message.received`` webhooks.

        :param account: the receiving account.
        :param from_number: the contact's E.164 number.
        :param to_number: one of the account's numbers.
        :param body: the text.
        :param origin: ``admin`` or ``reply`` (shown by the inspection API).
        :return: the message as ``GET /api/messages`` shows it.
        """
        errors: dict[str, list[str]] = {}
        data = {"from": from_number, "to": to_number, "body": body}
        sender = required_string(data, "from", errors)
        recipient = required_string(data, "to", errors)
        text = required_string(data, "body", errors)
        if sender is not None and not E164.match(sender):
            errors["from"] = ["The from field must be a phone number in E.164 format."]
        if recipient is not None and account.number(recipient) is None:
            errors["to"] = ["The to number is not a phone number of the account."]
        if errors:
            raise ValidationFailed(errors)
        assert sender is not None
        assert recipient is not None
        assert text is not None
        row = account.store.append(
            message_id=self._take_id("message"),
            created=int(self.server_now()),
            direction=INBOUND,
            status=RECEIVED,
            credits=0,
            number=recipient,
            contact=sender,
            body=text,
            origin=ORIGIN_CODES[origin],
        )
        keyword = text.strip().upper()
        if keyword in STOP_WORDS:
            account.opted_out.add(sender)
        elif keyword in START_WORDS:
            account.opted_out.discard(sender)
        self._emit(account, "message.received", row)
        return account.store.message_dict(row)
