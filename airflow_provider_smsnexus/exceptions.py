"""The error classes of the SMS Nexus provider, in one place.

Every error the hook raises is an :class:`SMSNexusError`, so ``except SMSNexusError`` catches all of them.
Errors that a retry cannot fix (a bad token, a request the server rejected as invalid) also derive from
:class:`~airflow.sdk.exceptions.AirflowFailException`, so Airflow fails the task at once instead of retrying it.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException


class SMSNexusError(AirflowException):
    """
    Base class of every SMS Nexus error.

    ``str(error)`` is this provider's own explanation; the server's words are kept apart in
    :attr:`server_message`, so that code can tell "what the server said" from "what to do".

    :param message: what went wrong and what to do about it (never contains the API token); this is
        the exception's text, ``str(error)``.
    :param status_code: the HTTP status of the answer, or None when no answer came.
    :param server_message: the ``message`` field of the server's JSON body, when it sent one.
    """

    def __init__(self, message: str, *, status_code: int | None = None, server_message: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message

    def __reduce__(self):
        # Keep keyword-only attributes across pickling (Airflow ships exceptions between processes).
        return (_rebuild, (type(self), str(self), self.__dict__.copy()))


def _rebuild(cls: type[SMSNexusError], text: str, state: dict) -> SMSNexusError:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.__dict__.update(state)
    return error


class SMSNexusAuthError(SMSNexusError, AirflowFailException):
    """401: the API token is missing or invalid. Fix the connection's password; retrying cannot help."""


class SMSNexusForbiddenError(SMSNexusError):
    """403: the account is suspended, or the resource belongs to another account."""


class SMSNexusNotFoundError(SMSNexusError):
    """404: the resource (for example a webhook id) does not exist."""


class SMSNexusConnectionNotFoundError(SMSNexusError, AirflowNotFoundException):
    """
    The SMS Nexus connection is not defined where the task or trigger runs. The text names the connection and
    the places Airflow looks for it. Also an ``AirflowNotFoundException``, as Airflow's own lookup raises.

    :param conn_id: the connection id that was looked up.
    """

    def __init__(self, message: str, *, conn_id: str):
        super().__init__(message)
        self.conn_id = conn_id


class SMSNexusConfigError(SMSNexusError, AirflowFailException):
    """
    The connection's extras (or the CA-bundle variables they defer to) cannot be used: the text names the
    extra and what it takes. Fails the task at once: a retry would read the same connection.
    """


class SMSNexusValidationError(SMSNexusError, AirflowFailException):
    """
    422: the server rejected the request's fields. Retrying the same request cannot help.

    :param errors: the server's ``errors`` object: field name to list of messages.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 422,
        server_message: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ):
        super().__init__(message, status_code=status_code, server_message=server_message)
        self.errors: dict[str, list[str]] = errors or {}


class SMSNexusRateLimitError(SMSNexusError):
    """
    429 after the hook's retries were spent.

    :param reset_at: when the server said the window resets (epoch seconds), if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        server_message: str | None = None,
        reset_at: float | None = None,
    ):
        super().__init__(message, status_code=status_code, server_message=server_message)
        self.reset_at = reset_at


class SMSNexusCampaignError(SMSNexusError, AirflowFailException):
    """
    A campaign cannot run as configured: a missing column, a template error, a failed pre-flight check
    (an inactive sender, too little credit). Raised before the first send; retrying cannot help.
    """


class SMSNexusMissingValueError(SMSNexusError):
    """
    A row lacks a value its text needs: a key its nested value does not have (``{{ row.meta.tier }}`` on a row
    whose ``meta`` has no ``tier``), an attribute of a missing value, or arithmetic on a missing value.

    Raised by :meth:`~airflow_provider_smsnexus.campaign.render.MessageTemplate.render` for one row: the bulk
    operator reports that row ``invalid`` with this reason and sends the others.

    :param field: the value as the template names it below ``row`` (``meta.tier``).
    """

    def __init__(self, field: str):
        super().__init__(f"the text needs {field}, which the row does not have")
        self.field = field


class SMSNexusDestinationError(SMSNexusError):
    """
    A place the operator writes to (a campaign's ``report_path``, an export's ``path``) cannot be written: its
    folder cannot be created, it is a folder, or nothing may be written there (permissions, a read-only file
    system, a full disk).

    Checked before the first send, so that nothing is sent to a campaign whose report would be lost. Raised
    after sending only when the write itself fails (a full disk): then :attr:`summary` holds the campaign's
    summary (the texts went out), and an Airflow retry sends nothing again and writes the report.

    :param message: what went wrong and what to do.
    :param parameter: the operator's argument that names the place (``report_path``, ``path``).
    :param path: the place.
    :param summary: the campaign's summary when the failure came after sending, else None.
    """

    def __init__(self, message: str, *, parameter: str, path: str, summary: dict[str, object] | None = None):
        super().__init__(message)
        self.parameter = parameter
        self.path = path
        self.summary = summary


class SMSNexusInvalidNumberError(SMSNexusCampaignError):
    """
    A phone number given to a task has no sure E.164 reading: a sender or recipient argument, a sensor's or
    trigger's ``from_number(s)``, the notifier's ``to``. Raised before anything is sent or waited on; the
    text names the argument, the value and how to write it. A campaign error too (``to`` and ``from_number``
    of the send operators raised :class:`SMSNexusCampaignError` before), so existing handlers still catch it.

    :param parameter: the argument that holds the number (``"from_number"``, ``"to"``).
    """

    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class SMSNexusSuppressionListError(SMSNexusCampaignError):
    """
    A suppression list holds an entry that is not a phone number (or a national number without
    ``default_region``): the campaign stops before its first send, since a number meant to be suppressed
    could otherwise be texted. The text names the list and the line (or row) of each such entry.

    :param source: the list as the message names it (a path, or "the suppression list").
    :param places: where each bad entry is (``"line 3 of stop.csv"``), in order.
    """

    def __init__(self, message: str, *, source: str | None = None, places: list[str] | None = None):
        super().__init__(message)
        self.source = source
        self.places: list[str] = places or []


class SMSNexusCredentialsRejectedError(SMSNexusError, AirflowFailException):
    """
    SMS Nexus answered 401 (bad token) or 403 (account suspended / not yours) to the balance check.

    Fails the balance sensor at once, without retries, even with ``soft_fail=True``: a sensor that
    skips quietly because its token was revoked would silence the very alert it exists for.

    :param status_code: 401 or 403.
    :param smsnexus_conn_id: the connection whose credentials were rejected.
    :param server_message: the server's ``message``, if it sent one.
    """

    def __init__(self, status_code: int | None, smsnexus_conn_id: str, server_message: str | None = None):
        if status_code == 403:
            what = (
                "403 Forbidden: the account is suspended or the token has no permission for the balance; "
                "check the account in the SMS Nexus dashboard"
            )
        else:
            what = (
                f"{status_code or 401} Unauthorized: the API token is missing or invalid; "
                f"fix the password of connection {smsnexus_conn_id!r}"
            )
        detail = f" (server said: {server_message})" if server_message else ""
        super().__init__(
            f"SMS Nexus refused the balance check with {what}{detail}",
            status_code=status_code,
            server_message=server_message,
        )


class SMSNexusServerError(SMSNexusError):
    """5xx, or no answer at all for a read (connection error, timeout) after the hook's retries."""


class SMSNexusResponseError(SMSNexusError):
    """A successful status whose body is not the documented JSON shape (e.g. an HTML page from a proxy)."""


class SMSNexusSendOutcomeUnknownError(SMSNexusError):
    """
    A send whose result cannot be known: the request left, but no usable answer came back
    (read timeout, connection dropped after the request was written, or a 5xx).

    The server may or may not have sent the message. Do not resend blindly: look for it in
    ``/api/messages`` first (the bulk operator's ledger does this).

    :param from_number: the sender of the send in question.
    :param to: the recipient of the send in question.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        server_message: str | None = None,
        from_number: str | None = None,
        to: str | None = None,
    ):
        super().__init__(message, status_code=status_code, server_message=server_message)
        self.from_number = from_number
        self.to = to
