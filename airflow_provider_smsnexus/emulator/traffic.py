"""Messages that the emulator makes up: seeded history (a realistic mix spread over a span, added in
bulk with numpy), live traffic that arrives while a client pages, and customer replies on existing
conversations. None of it sends webhooks or charges credits; all of it is visible through the
inspection API under its own origin (``seed`` or ``live``). :class:`Traffic` makes all three.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_smsnexus.emulator.core import SECONDS_PER_DAY
from airflow_provider_smsnexus.emulator.segments import count_segments
from airflow_provider_smsnexus.emulator.store import (
    DELIVERED,
    FAILED,
    INBOUND,
    ORIGIN_CODES,
    OUTBOUND,
    QUEUED,
    RECEIVED,
    SENT,
)
from airflow_provider_smsnexus.emulator.validation import ValidationFailed

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from airflow_provider_smsnexus.emulator.accounts import Account, AccountBook
    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock

log = logging.getLogger(__name__)

#: Area codes of the fictional contacts of seeded history and live traffic (+1 NXX 555-01XX).
CONTACT_AREA_CODES = (
    "919", "213", "206", "214", "267", "303", "305", "312", "404", "415",
    "503", "512", "602", "617", "702", "713", "718", "720", "801", "808",
)  # fmt: skip
_CONTACTS = [f"+1{area}555{number:04d}" for area in CONTACT_AREA_CODES for number in range(100, 200)]
#: Contacts of seeded history and live traffic.
CONTACT_POOL_SIZE = 2000


def seed_bodies(rng: random.Random) -> tuple[list[str], list[str]]:
    """Distinct outbound and inbound texts for seeded history and live traffic: a realistic mix of
    short GSM-7, multi-part, UCS-2 (accents, curly quotes, emoji) texts."""
    names = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemi", "Luca"]
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow"]
    outbound_templates = [
        "Hi {name}, your order #{num} has shipped and arrives {day}.",
        "Your verification code is {code}. It expires in 10 minutes.",
        "Reminder: your appointment with Dr. {surname} is on {day} at {hour}:00. Reply C to confirm.",
        "{name}, your table is ready. Please come to the host stand.",
        "Flash sale! {pct}% off everything until midnight: https://example.com/s/{code} Reply STOP to opt out.",
        "Payment of ${amount}.00 received. Thank you, {name}!",
        "Hola {name}, tu pedido #{num} está en camino. ¡Gracias por tu compra!",
        "Don\u2019t forget: {day} is the last day to renew your membership, {name}.",
        "Thanks for visiting, {name}! 😊 Rate us: https://example.com/r/{code}",
        "Dear {name}, this is a notice about your account. Your statement for order #{num} is ready and "
        "a payment of ${amount}.00 is due on {day}. To pay, visit https://example.com/pay/{code} or call "
        "us during opening hours. Reply HELP for help or STOP to opt out of these messages.",
        "Your ride is arriving in {hour} minutes. Driver: {name}, plate {code}. Use code [{code}] at pickup.",
    ]
    inbound_templates = [
        "Yes", "C", "Thanks!", "What time do you open {day}?", "Can I reschedule to {day}?",
        "ok 👍", "Who is this?", "Confirmed", "No thanks", "I\u2019ll be there at {hour}", "Is order #{num} late?",
    ]  # fmt: skip

    def fill(template: str) -> str:
        return template.format(
            name=rng.choice(names),
            surname=rng.choice(["Patel", "Nguyen", "Smith", "Okafor", "Rossi"]),
            day=rng.choice(days),
            hour=rng.randint(1, 12),
            num=rng.randint(10000, 99999),
            code=rng.randint(100000, 999999),
            pct=rng.choice([10, 15, 20, 25, 30, 50]),
            amount=rng.randint(5, 500),
        )

    outbound = sorted({fill(rng.choice(outbound_templates)) for _ in range(600)})
    inbound = sorted({fill(rng.choice(inbound_templates)) for _ in range(150)} | {"STOP"})
    return outbound, inbound


@dataclass(eq=False)
class Traffic:
    """Makes up history, live traffic and customer replies.

    :param clock: the server's clock (``created_at`` of what happens now, the default span of history).
    :param ids: the id counters (messages).
    :param accounts: the accounts (history is seeded into an account named by id).
    :param rng: the dice of live traffic.
    :param reply_rng: the dice of the replies that move conversations (the list-drift switches').
    :param outbound_texts: what the accounts send, from :func:`seed_bodies`.
    :param inbound_texts: what contacts text, from :func:`seed_bodies` (STOP among them).
    """

    clock: ServerClock
    ids: IdCounters
    accounts: AccountBook
    rng: random.Random
    reply_rng: random.Random
    outbound_texts: Sequence[str]
    inbound_texts: Sequence[str]

    def _contact_pool(self, size: int) -> list[str]:
        return _CONTACTS[:size]

    def add_live_traffic(self, account: Account, count: int) -> None:
        """Add ``count`` new messages (created now) as if other traffic happened; no webhooks.

        :param account: the account.
        :param count: number of messages.
        """
        rng = self.rng
        numbers = [item.number for item in account.numbers if item.status == "active"] or [
            account.numbers[0].number
        ]
        contacts = self._contact_pool(CONTACT_POOL_SIZE)
        now = int(self.clock.now())
        for _ in range(count):
            inbound = rng.random() < 0.3
            text = rng.choice(self.inbound_texts if inbound else self.outbound_texts)
            account.store.append(
                message_id=self.ids.take("message"),
                created=now,
                direction=INBOUND if inbound else OUTBOUND,
                status=RECEIVED if inbound else DELIVERED,
                credits=0 if inbound else count_segments(text),
                number=rng.choice(numbers),
                contact=rng.choice(contacts),
                body=text,
                origin=ORIGIN_CODES["live"],
            )

    def add_reply(self, account: Account, number: int, contact: int, created: int) -> int:
        """Add a customer's text (never STOP) on the conversation of ``number`` and ``contact``.

        :param account: the account.
        :param number: string-table code of the account's number.
        :param contact: string-table code of the contact's number.
        :param created: its created_at (epoch seconds, server clock).
        :return: its row.
        """
        text = self.reply_rng.choice([body for body in self.inbound_texts if body != "STOP"])
        store = account.store
        return store.append(
            message_id=self.ids.take("message"),
            created=created,
            direction=INBOUND,
            status=RECEIVED,
            credits=0,
            number=store.numbers[number],
            contact=store.numbers[contact],
            body=text,
            origin=ORIGIN_CODES["live"],
        )

    def seed(
        self,
        account_id: int,
        count: int,
        *,
        random_seed: int = 0,
        start: float | None = None,
        end: float | None = None,
    ) -> dict[str, Any]:
        """Add ``count`` messages of history spread uniformly over ``[start, end)``.

        About 75 % outbound (93 % delivered, 5 % failed, the rest sent or queued) and 25 % inbound
        replies, between the account's numbers and 2,000 fictional contacts, with a mix of short,
        multi-part and UCS-2 texts charged per segment. Ids follow created_at. No webhooks, no
        credits deducted, no STOP processing.

        :param account_id: account id.
        :param count: number of messages.
        :param random_seed: seed of the generated history (same seed, same history).
        :param start: first moment (epoch seconds); default 90 days before ``end``.
        :param end: end of the span (epoch seconds, excluded); default now on the server's clock.
        :return: ``{"seeded": count, "seconds": elapsed}``.
        """
        import numpy as np

        began = time.perf_counter()
        account = self.accounts.account(account_id)
        if count < 0:
            raise ValidationFailed({"n": ["The n field must be at least 0."]})
        end = float(self.clock.now() if end is None else end)
        start = float(end - 90 * SECONDS_PER_DAY if start is None else start)
        if start >= end:
            raise ValidationFailed({"end": ["The end field must be a date after start."]})
        rng = np.random.default_rng(random_seed)
        numbers = [item.number for item in account.numbers if "sms" in item.capabilities] or [
            account.numbers[0].number
        ]
        strings, bodies = account.store.numbers, account.store.bodies  # the run's shared string tables
        number_codes = np.array([strings.code(value) for value in numbers], dtype=np.int32)
        contact_codes = np.array(
            [strings.code(value) for value in self._contact_pool(CONTACT_POOL_SIZE)], dtype=np.int32
        )
        outbound_codes = np.array([bodies.code(text) for text in self.outbound_texts], dtype=np.int32)
        outbound_credits = np.array([count_segments(text) for text in self.outbound_texts], dtype=np.int32)
        inbound_codes = np.array([bodies.code(text) for text in self.inbound_texts], dtype=np.int32)

        created = np.sort(rng.integers(math.ceil(start), math.ceil(end), size=count, dtype=np.int64))
        inbound = rng.random(count) < 0.25
        direction = inbound.astype(np.int8)
        body_pick = rng.integers(0, len(outbound_codes), size=count)
        body = np.where(inbound, inbound_codes[rng.integers(0, len(inbound_codes), size=count)],
                        outbound_codes[body_pick])  # fmt: skip
        credits = np.where(inbound, 0, outbound_credits[body_pick])
        outcome = rng.choice(
            np.array([DELIVERED, FAILED, SENT, QUEUED], dtype=np.int8),
            size=count,
            p=[0.93, 0.05, 0.015, 0.005],
        )
        status = np.where(inbound, np.int8(RECEIVED), outcome).astype(np.int8)
        first_id = self.ids.take("message", count)
        account.store.extend(
            ids=np.arange(first_id, first_id + count, dtype=np.int64),
            created=created,
            direction=direction,
            status=status,
            credits=credits,
            number=number_codes[rng.integers(0, len(number_codes), size=count)],
            contact=contact_codes[rng.integers(0, len(contact_codes), size=count)],
            body=body,
            origin=ORIGIN_CODES["seed"],
        )
        elapsed = time.perf_counter() - began
        log.info("Seeded %d messages into account %d in %.2f s", count, account.id, elapsed)
        return {"seeded": count, "seconds": round(elapsed, 3)}
