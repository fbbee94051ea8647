"""SMSNexusNotifier: send an SMS from an Airflow callback or deadline alert."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

from airflow_provider_smsnexus.exceptions import (
    SMSNexusAuthError,
    SMSNexusError,
    SMSNexusForbiddenError,
    SMSNexusSendOutcomeUnknownError,
)
from airflow_provider_smsnexus.hooks.smsnexus import SMSNexusHook
from airflow_provider_smsnexus.utils.phone import phone_argument
from airflow_provider_smsnexus.utils.segments import MAX_MESSAGE_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow.sdk import Context

#: The old name of :data:`~airflow_provider_smsnexus.utils.segments.MAX_MESSAGE_LENGTH`.
MAX_MESSAGE_CHARS = MAX_MESSAGE_LENGTH
#: What replaces the end of a text that is too long (GSM-7, so it does not change the encoding).
TRUNCATION_MARK = "..."


def fit_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """
    Cut ``text`` to at most ``limit`` characters, ending in ``...`` when it was cut.

    :param text: the rendered message.
    :param limit: the maximum length in characters (default 1600, the API's limit).
    """
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def recipient_list(to: str | Iterable[str]) -> list[str]:
    """
    The recipients as a list without blanks or repeats, in the given order.

    :param to: one number, several numbers separated by commas, or an iterable of numbers.
    """
    numbers = to.split(",") if isinstance(to, str) else list(to)
    return list(dict.fromkeys(str(number).strip() for number in numbers if str(number).strip()))


class SMSNexusNotifier(BaseNotifier):
    """
    Send an SMS through SMS Nexus: for ``on_failure_callback``, ``on_success_callback`` and deadline alerts.

    .. code-block:: python

        EmptyOperator(
            task_id="load",
            on_failure_callback=SMSNexusNotifier(
                from_number="+12125550100",
                to=["+12125550150", "+12125550151"],
                message="{{ dag.dag_id }} failed: {{ ti.task_id }}",
            ),
        )

    The message is rendered with the callback's context, then cut to 1600 characters (ending in ``...``).
    Each recipient gets its own send; one that cannot be reached (a 422 for an invalid number, a 429
    after the hook's waits ran out) is logged and the others still get the message. A send whose answer
    was lost (a 5xx, a dropped connection, a read timeout) is never resent, since the person may already
    have the text: it is reported as "outcome unknown". After trying all, the notifier raises
    :class:`~airflow_provider_smsnexus.exceptions.SMSNexusError` naming the recipients that failed or whose
    outcome is unknown, so a task that sends an alert fails visibly. A 401 or 403 stops at once:
    every other send would fail the same way.

    ``notify`` serves callbacks run by the task runner or DAG processor; ``async_notify`` serves the
    triggerer (deadline alerts) and runs the sends in a worker thread, so the event loop is not blocked.

    .. seealso:: "Notifier" in :doc:`/guides/balance-alerts`.

    Every number must carry its country (``+1 212 555 0150``): there is no ``default_region`` here. A number
    that is not usable (``2015550142`` could be New Jersey or Egypt) raises
    :class:`~airflow_provider_smsnexus.exceptions.SMSNexusInvalidNumberError` naming ``to`` or
    ``from_number`` before any text is sent; two spellings of one number get one text.

    :param from_number: the sending number of the account, E.164 (templated).
    :param to: one number, a comma-separated string of numbers, or a list of numbers (templated).
    :param message: the text, a Jinja template rendered with the context (templated).
    :param smsnexus_conn_id: the SMS Nexus connection id (default ``smsnexus_default``).
    """

    template_fields: Sequence[str] = ("from_number", "to", "message", "smsnexus_conn_id")

    def __init__(
        self,
        *,
        from_number: str,
        to: str | Iterable[str],
        message: str,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.from_number = from_number
        self.to = to
        self.message = message
        self.smsnexus_conn_id = smsnexus_conn_id

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def notify(self, context: Context) -> None:
        """
        Send the (already rendered) message to every recipient.

        :param context: the Airflow context (rendering happens before, in ``__call__``).
        :raises ValueError: when there is no recipient or the message is empty.
        :raises SMSNexusInvalidNumberError: naming ``to`` or ``from_number`` when a number is not usable;
            nothing was sent.
        :raises SMSNexusError: naming the recipients that failed, after trying all of them.
        """
        sender = phone_argument(self.from_number, "from_number", suggest_region=False)
        recipients = list(
            dict.fromkeys(
                phone_argument(number, "to", suggest_region=False) for number in recipient_list(self.to)
            )
        )
        if not recipients:
            raise ValueError("SMSNexusNotifier has no recipient: set `to` to a number or a list of numbers")
        text = fit_message(str(self.message))
        if not text.strip():
            raise ValueError("SMSNexusNotifier's message rendered to an empty text")
        if len(text) < len(str(self.message)):
            self.log.warning("Message cut from %d to %d characters", len(str(self.message)), len(text))

        failures: dict[str, SMSNexusError] = {}
        unknown: dict[str, SMSNexusError] = {}
        for number in recipients:
            try:
                sent = self.hook.send_sms(from_number=sender, to=number, message=text)
            except (SMSNexusAuthError, SMSNexusForbiddenError):
                raise
            except SMSNexusSendOutcomeUnknownError as error:
                # The server may hold it: resending could text the person twice, so say so instead.
                self.log.warning("SMS to %s may or may not have been sent (not resent): %s", number, error)
                unknown[number] = error
            except SMSNexusError as error:
                self.log.warning("SMS to %s failed: %s", number, error)
                failures[number] = error
            else:
                self.log.info("SMS to %s queued (message id %s)", number, sent.get("id"))
        if failures or unknown:
            parts = [
                f"reached {len(recipients) - len(failures) - len(unknown)} of {len(recipients)} recipient(s)"
            ]
            if unknown:
                details = "; ".join(f"{number}: {error}" for number, error in unknown.items())
                parts.append(f"outcome unknown, not resent (may have been texted): {details}")
            if failures:
                details = "; ".join(f"{number}: {error}" for number, error in failures.items())
                parts.append(f"failed: {details}")
            raise SMSNexusError("SMS notification " + "; ".join(parts))

    async def async_notify(self, context: Context) -> None:
        """
        Send the message to every recipient without blocking the event loop (see :meth:`notify`).

        :param context: the Airflow context.
        """
        await asyncio.to_thread(self.notify, context)


send_smsnexus_notification = SMSNexusNotifier
