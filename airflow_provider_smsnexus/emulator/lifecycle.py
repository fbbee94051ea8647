"""What happens to a message after it is stored: ``queued`` → ``sent`` → ``delivered`` or
``failed`` (after the settings' delays in the auto lifecycle, or when the inspection API advances it
in the manual one), the webhooks of the final status, and the replies (texts or STOP) that
recipients send back. Delays are durations on the machine's clock; only written timestamps use the
server's clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_smsnexus.emulator.core import EmulatorCore
from airflow_provider_smsnexus.emulator.settings import LIFECYCLE_AUTO
from airflow_provider_smsnexus.emulator.store import DELIVERED, FAILED, QUEUED, SENT

if TYPE_CHECKING:
    from airflow_provider_smsnexus.emulator.accounts import Account

#: The next status of a message whose status changes under a paging client (``delivered`` →
#: ``failed`` is a late delivery report); ``failed`` and ``received`` never change.
NEXT_STATUS = {QUEUED: SENT, SENT: DELIVERED, DELIVERED: FAILED}


class LifecycleMixin(EmulatorCore):
    """Status changes and replies."""

    def tick(self) -> None:
        """Move messages whose delay has passed (auto lifecycle); called a few times a second."""
        if self.settings.lifecycle != LIFECYCLE_AUTO or not (self.pending or self.replies):
            return
        now = self.clock()
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
        now = self.clock()
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
                self.pending[key] = self.clock()
            return True
        self.pending.pop(key, None)
        final = NEXT_STATUS[status]
        store.set_status(row, final)
        self._emit(account, "message.failed" if final == FAILED else "message.delivered", row)
        return True

    def _advance(self, key: tuple[int, int], since: float, now: float, *, force: bool) -> list[str]:
        account_id, row = key
        account = self.accounts.get(account_id)
        if account is None:
            self.pending.pop(key, None)
            return []
        store = account.store
        changed: list[str] = []
        if store.status[row] == QUEUED and (force or now - since >= self.settings.sent_delay):
            store.set_status(row, SENT)
            since = now if force else since + self.settings.sent_delay
            self.pending[key] = since
            changed.append("sent")
        if store.status[row] == SENT and (force or now - since >= self.settings.final_delay):
            del self.pending[key]
            changed.append(self._finish(account, row, now, immediate=force))
        return changed

    def _finish(self, account: Account, row: int, now: float, *, immediate: bool) -> str:
        store = account.store
        contact = store.numbers[store.contact[row]]
        failed = contact in account.opted_out or self.lifecycle_rng.random() < self.settings.failure_share
        store.set_status(row, FAILED if failed else DELIVERED)
        self._emit(account, "message.failed" if failed else "message.delivered", row)
        if failed:
            return "failed"
        roll = self.lifecycle_rng.random()
        reply = None
        if roll < self.settings.stop_share:
            reply = "STOP"
        elif roll < self.settings.stop_share + self.settings.reply_share:
            reply = self.lifecycle_rng.choice([text for text in self._inbound_texts if text != "STOP"])
        if reply is not None:
            due = now if immediate else now + self.settings.reply_delay
            self.replies.append((due, account.id, store.numbers[store.number[row]], contact, reply))
        return "delivered"

    def _deliver_reply(self, reply: tuple[float, int, str, str, str]) -> None:
        _, account_id, number, contact, body = reply
        account = self.accounts.get(account_id)
        if account is not None:
            self.receive(account, contact, number, body, origin="reply")
