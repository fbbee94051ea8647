"""How the two hooks put one request on the wire: a pooled ``requests`` session, or an aiohttp request.

Each function turns the connection's transport extras (``verify``, ``proxies``, ``timeout``) into the
library's terms and returns what the server said as an :class:`Answer`, or a :class:`NoAnswer` naming the
failure's class; deciding what that means (retry, raise, unknown outcome) is the retry driver's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_smsnexus.hooks._retry import Answer, NoAnswer, aiohttp_failure, requests_failure

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig


def requests_session(config: SMSNexusConnectionConfig) -> requests.Session:
    """A pooled session with the connection's headers, TLS verification and proxies; no urllib3 retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(config.headers())
    session.verify = config.verify
    if config.proxies:
        session.proxies.update(config.proxies)
    return session


def requests_send(
    session: requests.Session,
    config: SMSNexusConnectionConfig,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json_body: Any = None,
) -> Answer | NoAnswer:
    """One attempt of a request through ``session``."""
    try:
        # verify per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's.
        response = session.request(
            method,
            config.url(path),
            params=params,
            json=json_body,
            timeout=config.timeout,
            verify=config.verify,
        )
    except requests.RequestException as exc:
        # Only the class travels on: the exception's text may carry the URL (never the headers).
        return requests_failure(exc)
    return Answer(response.status_code, response.headers, response.text)


def aiohttp_options(config: SMSNexusConnectionConfig) -> dict[str, Any]:
    """The ``verify`` and ``proxies`` extras in aiohttp's terms (keyword arguments of ``request``)."""
    options: dict[str, Any] = {}
    if isinstance(config.verify, str):
        import ssl

        options["ssl"] = ssl.create_default_context(cafile=config.verify)
    elif config.verify is False:
        options["ssl"] = False
    scheme = config.base_url.split("://", 1)[0]
    if config.proxies and config.proxies.get(scheme):
        options["proxy"] = config.proxies[scheme]
    return options


async def aiohttp_send(
    session: aiohttp.ClientSession,
    config: SMSNexusConnectionConfig,
    options: dict[str, Any],
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
) -> Answer | NoAnswer:
    """One attempt of a request through ``session``, with the :func:`aiohttp_options` of the connection."""
    import aiohttp

    try:
        async with session.request(method, config.url(path), params=params, **options) as response:
            text = await response.text(errors="replace")
            return Answer(response.status, response.headers, text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return aiohttp_failure(exc)
