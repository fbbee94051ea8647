"""What happens to a message after it is stored: ``queued`` → ``sent`` → ``delivered`` or
``failed`` (after the settings' delays in the auto lifecycle, or when the inspection API advances it
in the manual one), the webhooks of the final status, and the replies (texts or STOP) that
recipients send back, all kept by a :class:`Lifecycle`. Delays are durations on the machine's clock;
only written timestamps use the server's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_AUTO
from airflow_provider_smsnexus.emulator.store import DELIVERED, FAILED, QUEUED, SENT

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from airflow_provider_smsnexus.emulator.accounts import Account, AccountBook
    from airflow_provider_smsnexus.emulator.core import ServerClock, SettingsInForce
    from airflow_provider_smsnexus.emulator.inbound import InboundTexts
    from airflow_provider_smsnexus.emulator.subscriptions import WebhookRegistry

#: The next status of a message whose status changes under a paging client (``delivered`` →
#: ``failed`` is a late delivery report); ``failed`` and ``received`` never change.
NEXT_STATUS = {QUEUED: SENT, SENT: DELIVERED, DELIVERED: FAILED}


#: A reply on its way: (due on the machine's clock, account id, account number, contact, text).
PendingReply = tuple[float, int, str, str, str]


@dataclass(eq=False)
class Lifecycle:
    """The messages still moving on and the replies still to come.

    :param settings: the settings in force (lifecycle mode, delays, shares of failures and replies).
    :param clock: the machine's clock (delays).
    :param rng: the lifecycle's dice (failures, replies and their texts).
    :param accounts: the accounts (a pending message names its account by id).
    :param webhooks: where final statuses go.
    :param inbound: where recipients' replies arrive.
    :param reply_texts: what recipients may reply, besides STOP.
    """

    settings: SettingsInForce
    clock: ServerClock
    rng: random.Random
    accounts: AccountBook
    webhooks: WebhookRegistry
    inbound: InboundTexts
    reply_texts: Sequence[str]
    #: (account id, row) of each message not final yet -> machine time its current status began.
    pending: dict[tuple[int, int], float] = field(default_factory=dict, init=False)
    replies: list[PendingReply] = field(default_factory=list, init=False)

    def track(self, account: Account, row: int) -> None:
        """Start moving a new ``queued`` message on from now.

        :param account: its account.
        :param row: its row.
        """
        self.pending[account.id, row] = self.clock.machine()

    def resume_auto(self) -> None:
        """Count the delays of waiting messages from now at the latest (the lifecycle turns automatic:
        a message that waited under the manual one does not move at once)."""
        now = self.clock.machine()
        self.pending = {key: max(since, now) for key, since in self.pending.items()}

    def settle(self, account: Account, row: int, final: int) -> None:
        """Give an outbound message its final status ``final`` now, with its webhook, as a carrier would
        (nothing happens when it has that status already).

        :param account: its account.
        :param row: its row.
        :param final: ``DELIVERED`` or ``FAILED``.
        """
        store = account.store
        self.pending.pop((account.id, row), None)
        if store.status[row] != final:
            store.set_status(row, final)
            self.webhooks.emit(account, "message.failed" if final == FAILED else "message.delivered", row)

    def tick(self) -> None:
        """Move messages whose delay has passed (auto lifecycle); called a few times a second."""
        if self.settings.current.lifecycle != LIFECYCLE_AUTO or not (self.pending or self.replies):
            return
        now = self.clock.machine()
        for key, since in list(self.pending.items()):
            self._advance(key, since, now, force=False)
        due = [reply for reply in self.replies if reply[0] <= now]
        if due:
            self.replies = [reply for reply in self.replies if reply[0] > now]
            for reply in due:
                self._deliver_reply(reply)

    def advance_lifecycle(self) -> dict[str, int]:
        """Move every pending message to its final status now, and deliver every pending reply.

        :return: how many messages became ``sent``, ``delivered``, ``failed``, and replies ``received``.
        """
        counts = {"sent": 0, "delivered": 0, "failed": 0, "received": 0}
        now = self.clock.machine()
        for key, since in list(self.pending.items()):
            for status in self._advance(key, since, now, force=True):
                counts[status] += 1
        replies, self.replies = self.replies, []
        for reply in replies:
            self._deliver_reply(reply)
            counts["received"] += 1
        return counts

    def move_status_on(self, account: Account, row: int) -> bool:
        """Give a message its :data:`NEXT_STATUS` now, with the webhook of a final status.

        :param account: the message's account.
        :param row: its row.
        :return: whether it changed (False for ``failed`` and ``received``).
        """
        store = account.store
        status = store.status[row]
        if status not in NEXT_STATUS:
            return False
        key = (account.id, row)
        if status == QUEUED:
            store.set_status(row, SENT)
            if key in self.pending:
                self.pending[key] = self.clock.machine()
            return True
        self.pending.pop(key, None)
        final = NEXT_STATUS[status]
        store.set_status(row, final)
        self.webhooks.emit(account, "message.failed" if final == FAILED else "message.delivered", row)
        return True

    def _advance(self, key: tuple[int, int], since: float, now: float, *, force: bool) -> list[str]:
        account_id, row = key
        account = self.accounts.by_id.get(account_id)
        if account is None:
            self.pending.pop(key, None)
            return []
        store = account.store
        settings = self.settings.current
        changed: list[str] = []
        if store.status[row] == QUEUED and (force or now - since >= settings.sent_delay):
            store.set_status(row, SENT)
            since = now if force else since + settings.sent_delay
            self.pending[key] = since
            changed.append("sent")
        if store.status[row] == SENT and (force or now - since >= settings.final_delay):
            del self.pending[key]
            changed.append(self._finish(account, row, now, immediate=force))
        return changed

    def _finish(self, account: Account, row: int, now: float, *, immediate: bool) -> str:
        store = account.store
        settings = self.settings.current
        contact = store.numbers[store.contact[row]]
        failed = contact in account.opted_out or self.rng.random() < settings.failure_share
        store.set_status(row, FAILED if failed else DELIVERED)
        self.webhooks.emit(account, "message.failed" if failed else "message.delivered", row)
        if failed:
            return "failed"
        roll = self.rng.random()
        reply = None
        if roll < settings.stop_share:
            reply = "STOP"
        elif roll < settings.stop_share + settings.reply_share:
            reply = self.rng.choice(self.reply_texts)
        if reply is not None:
            due = now if immediate else now + settings.reply_delay
            self.replies.append((due, account.id, store.numbers[store.number[row]], contact, reply))
        return "delivered"

    def _deliver_reply(self, reply: PendingReply) -> None:
        _, account_id, number, contact, body = reply
        account = self.accounts.by_id.get(account_id)
        if account is not None:
            self.inbound.receive(account, contact, number, body, origin="reply")
