"""SMSNexusReplySensor: wait for a reply from one number; SMSNexusApprovalSensor: the same, for a YES or
a NO, approving, rejecting (fail, or hand the answer to a branch) or timing out. Each poke reads the inbound
list only from where the question was asked, then from where the poke before it ended."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.triggers.base import TRANSIENT_ERRORS
from airflow_provider_smsnexus.triggers.inbox import (
    Edge,
    InboxWindow,
    ReplyFilter,
    normalize_numbers,
    read_inbound,
)
from airflow_provider_smsnexus.triggers.reply import SMSNexusReplyTrigger, first_reply
from airflow_provider_smsnexus.utils.keywords import answer_pattern, answer_word
from airflow_provider_smsnexus.utils.times import as_utc, created_at_of

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.sdk import Context


def coerce_after_id(value: Any) -> int | None:
    """The message id to wait after: an int, a string of digits, or a sent message (a dict with ``id``)."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SMSNexusError(f"after_id must be a message id or a sent message with an id, not {value!r}")


def question_edge(value: Any) -> Edge | None:
    """Where replies to a sent message (a dict with ``created_at``) can start: its ``created_at``; else None."""
    created = created_at_of(value) if isinstance(value, dict) else None
    return None if created is None else Edge(created)


class SMSNexusReplySensor(BaseSensorOperator):
    """
    Wait for the first reply from ``from_number`` after a message (``after_id``) or a moment (``after``).

    Returns the reply (the message as ``GET /api/messages`` lists it). Fails with
    :class:`AirflowSensorTimeout`, naming the number and the pattern, when none came within ``timeout``.
    A reply from the number that does not match is logged and passed over. A 429 or a 5xx is logged and
    checked again. With ``deferrable=True`` the wait runs in the triggerer
    (:class:`~airflow_provider_smsnexus.triggers.reply.SMSNexusReplyTrigger`).

    A poke reads the inbound list from the question on (its ``created_at`` when ``after_id`` is the sent
    message, ``after``, or the span of recent messages that shows where ``after_id`` falls), then from where
    the poke before it ended: about one page a poke, however long the account's history.

    .. seealso:: "Waiting for a reply" in :doc:`/guides/two-way`.

    :param from_number: the contact whose reply is awaited, E.164 with its ``+`` (templated). A number
        without a country (``2015550142``) fails the task before anything is read, with
        :class:`~airflow_provider_smsnexus.exceptions.SMSNexusInvalidNumberError`.
    :param after_id: only replies with a greater id: a message id or the sent message's XCom (templated).
    :param after: only replies created at or after this moment, by the server's clock (templated).
    :param pattern: only texts matching this regular expression, case-insensitive, e.g. ``^(YES|NO)$``.
    :param to_number: only replies to this number of the account.
    :param smsnexus_conn_id: the SMS Nexus connection id.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = (
        "from_number",
        "to_number",
        "pattern",
        "after_id",
        "after",
        "smsnexus_conn_id",
    )
    ui_color = "#d7ecd9"

    def __init__(
        self,
        *,
        from_number: str,
        after_id: int | str | dict[str, Any] | None = None,
        after: datetime | str | None = None,
        pattern: str | None = None,
        to_number: str | None = None,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.from_number = from_number
        self.after_id = after_id
        self.after = after
        self.pattern = pattern
        self.to_number = to_number
        self.smsnexus_conn_id = smsnexus_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    @cached_property
    def reply_filter(self) -> ReplyFilter:
        """The rendered conditions a reply must meet (raises naming an argument that is not usable)."""
        return ReplyFilter(
            from_numbers=normalize_numbers(self.from_number, "from_number"),
            to_number=self.to_number,
            pattern=self.pattern,
        )

    def _start(self) -> tuple[int, datetime | None]:
        after_id, after = coerce_after_id(self.after_id), as_utc(self.after, "after")
        if after_id is None and after is None:
            raise SMSNexusError("after_id / after: give the question's message id or a moment to wait after")
        return after_id or 0, after

    @cached_property
    def window(self) -> InboxWindow:
        """Where the next poke reads the inbound list from (moved on by each poke; see the class docstring)."""
        after_id, after = self._start()
        return InboxWindow(after_id, after, question_edge(self.after_id))

    @cached_property
    def passed_over(self) -> set[int]:
        """The ids of replies from the number already logged as not matching."""
        return set()

    def _what(self) -> str:
        pattern = f" matching {self.pattern!r}" if self.pattern else ""
        return f"reply from {self.reply_filter.from_numbers[0]}{pattern}"

    def _expected(self) -> str | None:
        """What a matching reply looks like, for the log line of one passed over (None: the pattern)."""
        return None

    def poke(self, context: Context) -> PokeReturnValue:
        """Look once for the reply; done with it as XCom value when it came."""
        reply_filter = self.reply_filter  # checks the arguments before anything is read
        try:
            rows = read_inbound(self.hook, self.window, self.log)
        except TRANSIENT_ERRORS as error:
            self.log.warning("Looking for a %s failed for now (%s); again later", self._what(), error)
            return PokeReturnValue(is_done=False)
        reply = first_reply(
            rows, reply_filter, log=self.log, passed_over=self.passed_over, expected=self._expected()
        )
        if reply is None:
            self.log.info("No %s yet", self._what())
            return PokeReturnValue(is_done=False)
        self.log.info("Reply %s from %s: %r", reply.get("id"), reply.get("from"), reply.get("body"))
        return PokeReturnValue(is_done=True, xcom_value=self.result(reply))

    def result(self, reply: dict[str, Any]) -> Any:
        """The task's XCom value for the reply (here: the reply itself)."""
        return reply

    def execute(self, context: Context) -> Any:
        """Poke until the reply came (poke/reschedule mode), or look once and defer."""
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise AirflowSensorTimeout(f"No {self._what()} within {self.timeout:g} s") from None
        first = self.poke(context)
        if first:
            return first.xcom_value
        after_id, after = self._start()
        self.defer(
            trigger=SMSNexusReplyTrigger(
                from_number=self.reply_filter.from_numbers[0],
                to_number=self.reply_filter.to_number,
                pattern=self.pattern,
                after_id=after_id,
                after=after,
                position=self.window.edge.as_json() if self.window.edge is not None else None,
                smsnexus_conn_id=self.smsnexus_conn_id,
                poke_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: the reply's XCom value, or a clear failure."""
        status = event.get("status")
        if status == "success":
            return self.result(event["reply"])
        if status == "timeout":
            raise AirflowSensorTimeout(f"No {self._what()} within {self.timeout:g} s")
        raise SMSNexusError(f"Reply trigger failed: {event.get('message') or event!r}")


class SMSNexusApprovalSensor(SMSNexusReplySensor):
    """
    Wait for a YES or a NO from one number (after the question was texted), and approve or reject.

    Returns ``{"approved": True/False, "answer": "YES", "reply": {...}}``. A rejection fails the task
    (:class:`AirflowFailException`, no retries) unless ``fail_on_reject=False``, when the value goes to a
    branch; no answer within ``timeout`` fails it with :class:`AirflowSensorTimeout`. Any other text is
    not an answer: it is logged and the wait goes on.

    .. seealso:: "Approval by SMS" in :doc:`/guides/two-way`.

    An answer is the reply's first word (:func:`~airflow_provider_smsnexus.utils.keywords.answer_word`): any
    case, leading whitespace and punctuation aside, and what follows is free, so ``Yes, go ahead`` and
    ``yes!`` approve and ``No thanks`` rejects; ``yesterday``, ``Nobody knows`` and ``I said yes`` are not
    answers.

    :param approve_words: the answers that approve (case-insensitive; a reply starting with one approves).
    :param reject_words: the answers that reject.
    :param fail_on_reject: fail on a rejection (default) or return it.
    """

    def __init__(
        self,
        *,
        approve_words: Sequence[str] = ("YES",),
        reject_words: Sequence[str] = ("NO",),
        fail_on_reject: bool = True,
        **kwargs: Any,
    ) -> None:
        self.approve_words = [" ".join(word.split()).upper() for word in approve_words if word.split()]
        self.reject_words = [" ".join(word.split()).upper() for word in reject_words if word.split()]
        if not self.approve_words or not self.reject_words:
            raise SMSNexusError("approve_words / reject_words: give at least one word each")
        kwargs.setdefault("pattern", answer_pattern([*self.approve_words, *self.reject_words]))
        super().__init__(**kwargs)
        self.fail_on_reject = fail_on_reject

    def _expected(self) -> str:
        words = " or ".join([*self.approve_words, *self.reject_words])
        return f"not an answer: its first word is not {words}"

    def result(self, reply: dict[str, Any]) -> dict[str, Any]:
        """Approve or reject on the reply's first word."""
        answer = answer_word(str(reply.get("body") or ""), [*self.approve_words, *self.reject_words])
        if answer is None:
            raise SMSNexusError(
                f"Reply {reply.get('id')} matched pattern={self.pattern!r} but does not start with one of "
                f"{self.approve_words + self.reject_words}: give a pattern no broader than the answer words "
                "(or leave it unset)"
            )
        approved = answer in self.approve_words
        if not approved and self.fail_on_reject:
            raise AirflowFailException(
                f"Rejected: {reply.get('from')} answered {answer!r} (message {reply.get('id')})"
            )
        return {"approved": approved, "answer": answer, "reply": reply}
