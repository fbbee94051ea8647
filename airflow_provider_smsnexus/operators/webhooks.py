"""SMSNexusEnsureWebhookOperator (register a webhook unless the same one exists) and
SMSNexusDeleteWebhookOperator."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_smsnexus.exceptions import SMSNexusError, SMSNexusNotFoundError
from airflow_provider_smsnexus.hooks.smsnexus import WEBHOOK_EVENTS, SMSNexusHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


def _events(events: Sequence[str] | str) -> list[str]:
    chosen = [events] if isinstance(events, str) else list(events)
    unknown = sorted(set(chosen) - set(WEBHOOK_EVENTS))
    if not chosen or unknown:
        raise SMSNexusError(f"events: {unknown or 'none given'}; choose from {', '.join(WEBHOOK_EVENTS)}")
    return sorted(set(chosen))


class SMSNexusEnsureWebhookOperator(BaseOperator):
    """
    Make sure a webhook for ``url`` and exactly ``events`` is registered; return it.

    Idempotent: when one with the same URL and the same set of events exists, it is returned and nothing
    is registered. A webhook for the same URL with other events is left alone (and a new one registered).
    A run that dies between registering and returning leaves the webhook registered; the next run finds it.

    .. seealso:: "Webhooks as operators" in :doc:`/guides/two-way`.

    :param url: the HTTPS URL that receives the events (templated).
    :param events: any of ``message.received``, ``message.delivered``, ``message.failed``.
    :param smsnexus_conn_id: the SMS Nexus connection id.
    """

    template_fields: Sequence[str] = ("url", "smsnexus_conn_id")
    ui_color = "#e8dff5"

    def __init__(
        self,
        *,
        url: str,
        events: Sequence[str] | str = WEBHOOK_EVENTS,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.events = _events(events)
        self.smsnexus_conn_id = smsnexus_conn_id

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Find the webhook, or register it; return it."""
        for webhook in self.hook.list_webhooks():
            if webhook.get("url") == self.url and sorted(set(webhook.get("events") or [])) == self.events:
                self.log.info("Webhook %s for %s already registered", webhook.get("id"), self.url)
                return webhook
        webhook = self.hook.create_webhook(self.url, self.events)
        self.log.info(
            "Registered webhook %s for %s (%s)", webhook.get("id"), self.url, ", ".join(self.events)
        )
        return webhook


class SMSNexusDeleteWebhookOperator(BaseOperator):
    """
    Delete a webhook by id, or every webhook for a URL.

    :param webhook_id: the webhook's id (templated; e.g. the ensure operator's XCom ``id``).
    :param url: instead of an id: delete every webhook registered for this URL.
    :param missing_ok: a webhook that does not exist is not an error (default True: deleting is idempotent).
    :param smsnexus_conn_id: the SMS Nexus connection id.
    :return: the ids deleted.
    """

    template_fields: Sequence[str] = ("webhook_id", "url", "smsnexus_conn_id")
    ui_color = "#e8dff5"

    def __init__(
        self,
        *,
        webhook_id: int | str | None = None,
        url: str | None = None,
        missing_ok: bool = True,
        smsnexus_conn_id: str = SMSNexusHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (webhook_id is None) == (url is None):
            raise SMSNexusError("webhook_id / url: give exactly one of them")
        self.webhook_id = webhook_id
        self.url = url
        self.missing_ok = missing_ok
        self.smsnexus_conn_id = smsnexus_conn_id

    @cached_property
    def hook(self) -> SMSNexusHook:
        """The SMS Nexus hook for ``smsnexus_conn_id``."""
        return SMSNexusHook(smsnexus_conn_id=self.smsnexus_conn_id)

    def execute(self, context: Context) -> list[Any]:
        """Delete the webhook(s); return the ids deleted."""
        if self.url is not None:
            ids = [hook["id"] for hook in self.hook.list_webhooks() if hook.get("url") == self.url]
        else:
            ids = [self.webhook_id]
        deleted = []
        for webhook_id in ids:
            try:
                self.hook.delete_webhook(webhook_id)
            except SMSNexusNotFoundError:
                if not self.missing_ok:
                    raise
                self.log.info("Webhook %s does not exist (any more)", webhook_id)
                continue
            deleted.append(webhook_id)
        self.log.info("Deleted webhook(s) %s", deleted)
        return deleted
