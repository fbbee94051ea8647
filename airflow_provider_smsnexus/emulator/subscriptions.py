"""Registered webhooks, kept by a :class:`WebhookRegistry`: ``POST``/``GET``/``DELETE /api/webhooks``
(an HTTPS URL, or http with ``allow_http_webhooks``, and a list of events) and the hand-over of each
event of an account's messages to the :class:`~.webhooks.WebhookDispatcher`, which POSTs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_smsnexus.emulator.store import iso_utc
from airflow_provider_smsnexus.emulator.validation import EmulatorHTTPError, ValidationFailed, required_string
from airflow_provider_smsnexus.emulator.webhooks import EVENTS

if TYPE_CHECKING:
    from airflow_provider_smsnexus.emulator.accounts import Account
    from airflow_provider_smsnexus.emulator.core import IdCounters, ServerClock, SettingsInForce
    from airflow_provider_smsnexus.emulator.webhooks import WebhookDispatcher


@dataclass
class Webhook:
    """A registered webhook.

    :param id: public id.
    :param account_id: owner.
    :param url: where events are POSTed.
    :param events: subscribed events.
    :param created_at: epoch seconds (server clock).
    """

    id: int
    account_id: int
    url: str
    events: list[str]
    created_at: float
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "created_at": iso_utc(self.created_at),
        }


@dataclass(eq=False)
class WebhookRegistry:
    """The webhooks of a run, and the events they are sent.

    :param settings: the settings in force (``allow_http_webhooks``).
    :param clock: the server's clock (when a webhook was made, when an event occurred).
    :param ids: the id counters (webhooks).
    :param dispatcher: what POSTs the events.
    """

    settings: SettingsInForce
    clock: ServerClock
    ids: IdCounters
    dispatcher: WebhookDispatcher
    #: Every registered webhook by id, oldest first.
    webhooks: dict[int, Webhook] = field(default_factory=dict, init=False)

    def emit(self, account: Account, event: str, row: int) -> None:
        """Hand ``event`` of a message to every active webhook of its account that subscribed to it.

        :param account: the message's account.
        :param event: one of :data:`~.webhooks.EVENTS`.
        :param row: the message's row in the account's store.
        """
        hooks = [
            hook
            for hook in self.webhooks.values()
            if hook.account_id == account.id and hook.active and event in hook.events
        ]
        if hooks:
            message = account.store.message_dict(row)
            occurred_at = self.clock.now()
            for hook in hooks:
                self.dispatcher.submit(hook.id, hook.url, event, message, occurred_at=occurred_at)

    def create_webhook(self, account: Account, payload: Any) -> dict[str, Any]:
        """``POST /api/webhooks``: an HTTPS URL (http too with ``allow_http_webhooks``) and events.

        :param account: the caller.
        :param payload: the decoded JSON body.
        """
        data = payload if isinstance(payload, dict) else {}
        errors: dict[str, list[str]] = {}
        url = required_string(data, "url", errors)
        if url is not None:
            parts = urlsplit(url)
            schemes = ("https", "http") if self.settings.current.allow_http_webhooks else ("https",)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["url"] = ["The url field must be a valid URL."]
            elif parts.scheme not in schemes:
                errors["url"] = ["The url field must start with one of the following: https://."]
        events = data.get("events")
        if events is None or events == [] or events == "":
            errors["events"] = ["The events field is required."]
        elif not isinstance(events, list):
            errors["events"] = ["The events field must be an array."]
        else:
            for position, event in enumerate(events):
                if event not in EVENTS:
                    errors[f"events.{position}"] = [f"The selected events.{position} is invalid."]
        if errors:
            raise ValidationFailed(errors)
        assert url is not None
        assert isinstance(events, list)
        hook = Webhook(
            id=self.ids.take("webhook"),
            account_id=account.id,
            url=url,
            events=list(dict.fromkeys(events)),
            created_at=self.clock.now(),
        )
        self.webhooks[hook.id] = hook
        return hook.to_dict()

    def list_webhooks(self, account: Account) -> list[dict[str, Any]]:
        """``GET /api/webhooks`` data, oldest first.

        :param account: the caller.
        """
        return [hook.to_dict() for hook in self.webhooks.values() if hook.account_id == account.id]

    def delete_webhook(self, account: Account, webhook_id: str) -> None:
        """``DELETE /api/webhooks/{id}``: 404 when unknown, 403 when another account's.

        :param account: the caller.
        :param webhook_id: the id from the path.
        """
        hook = self.webhooks.get(int(webhook_id)) if webhook_id.isdigit() else None
        if hook is None:
            raise EmulatorHTTPError(404, "Webhook not found.")
        if hook.account_id != account.id:
            raise EmulatorHTTPError(403, "This action is unauthorized.")
        del self.webhooks[hook.id]
