"""Texts from contacts entering the emulator (a customer's reply, typed through the inspection API or the
inbox page, or made up by the lifecycle): stored as ``received``, with the STOP / START opt-out keywords
applied and ``message.received`` sent to the account's webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.store import INBOUND, ORIGIN_CODES, RECEIVED
from airflow_provider_smsnexus.emulator.validation import E164, ValidationFailed, required_string

if TYPE_CHECKING:
    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock
    from airflow_provider_smsnexus.emulator.subscriptions import WebhookRegistry

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})


@dataclass(eq=False)
class InboundTexts:
    """Receives contacts' texts.

    :param clock: the server's clock (``created_at``).
    :param ids: the id counters (messages).
    :param webhooks: where ``message.received`` goes.
    """

    clock: ServerClock
    ids: IdCounters
    webhooks: WebhookRegistry

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
            message_id=self.ids.take("message"),
            created=int(self.clock.now()),
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
        self.webhooks.emit(account, "message.received", row)
        return account.store.message_dict(row)
