"""How the two hooks put one request on the wire: a ``urllib3`` pool for the sync hook, aiohttp for the async one.

Each function turns the connection's transport extras (``verify``, ``proxies``, ``timeout``) and the proxy and
CA-bundle variables of the environment into the library's terms, and returns what the server said as an
:class:`Answer`, or a :class:`NoAnswer` naming the failure's class; deciding what that means (retry, raise,
unknown outcome) is the retry driver's job.

The sync hook sends through one :func:`urllib3_pool` per hook rather than a ``requests.Session``: ``requests``
costs about 0.7 ms of CPU per request over the 0.26 ms of the pool under it (most of it merging the environment
into every request), which was 70 % of an export's CPU (``bench/README.md``). What ``requests`` resolved per
request, the pool resolves once, when it is built: the base URL's host is fixed per connection.
:func:`requests_session` remains for ad-hoc calls (``hook.get_conn()``).
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

from airflow_provider_smsnexus.exceptions import SMSNexusError
from airflow_provider_smsnexus.hooks._retry import (
    REPEATABLE_METHODS,
    UNKNOWN,
    Answer,
    NoAnswer,
    aiohttp_failure,
    urllib3_failure,
)

if TYPE_CHECKING:
    import aiohttp
    import requests
    import urllib3

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

#: Connections kept per host: a campaign sends from up to this many threads through one hook.
POOL_MAXSIZE = 32
_JSON_CONTENT = {"Content-Type": "application/json"}


# -- the sync hook: one urllib3 pool per hook ------------------------------------------------------------


def ca_bundle_options(verify: bool | str) -> dict[str, Any]:
    """
    The ``verify`` extra as urllib3's certificate options, with the meaning it had under ``requests``.

    ``False`` verifies nothing; a path is the only CA bundle (a file) or certificate directory trusted, whatever
    the environment says; ``True`` trusts ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else certifi's bundle
    (``requests``' own default), read once when the pool is built.
    """
    if not isinstance(verify, str) and not verify:
        return {"cert_reqs": "CERT_NONE"}
    bundle = verify if isinstance(verify, str) else _environment_ca_bundle()
    if not bundle:
        return {"cert_reqs": "CERT_REQUIRED"}  # the system's store
    return {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"): bundle}


def _environment_ca_bundle() -> str | None:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return bundle
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def proxy_for(config: SMSNexusConnectionConfig) -> str | None:
    """
    The proxy URL the base URL's requests go through, or None.

    The connection's ``proxies`` extra first (keys as in ``requests``: ``"https://host"``, ``"https"``,
    ``"all://host"``, ``"all"``), then the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``) unless
    ``NO_PROXY`` names the host (entries as ``requests`` reads them, CIDR ranges included).
    """
    parts = urlsplit(config.base_url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    proxy = _select_proxy(config.proxies or {}, scheme, host)
    if proxy is None and not _bypasses_proxy(host, parts.port):
        import urllib.request

        proxy = _select_proxy(urllib.request.getproxies(), scheme, host)
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _select_proxy(proxies: dict[str, str], scheme: str, host: str) -> str | None:
    for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        if proxies.get(key):
            return proxies[key]
    return None


def _bypasses_proxy(host: str, port: int | None) -> bool:
    import urllib.request

    entries = [e.strip() for e in (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").split(",")]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in filter(None, entries):
        if address is not None:  # an IP host: exact entries and CIDR ranges
            try:
                if entry == host or ("/" in entry and address in ipaddress.ip_network(entry, strict=False)):
                    return True
            except ValueError:
                continue
        elif host.endswith(entry) or (port is not None and f"{host}:{port}".endswith(entry)):
            return True
    return bool(urllib.request.proxy_bypass(host))


def urllib3_pool(config: SMSNexusConnectionConfig) -> urllib3.PoolManager:
    """
    The sync hook's connection pool: the connection's headers, TLS verification (:func:`ca_bundle_options`),
    timeouts (``timeout`` for connecting and for each read), its proxy (:func:`proxy_for`), and no retries of
    urllib3's own (the retry driver decides). A ``ProxyManager`` when a proxy applies.

    :raises SMSNexusError: the token cannot be sent in a header, or the proxy's scheme is not supported.
    """
    import urllib3
    from urllib3.util import make_headers

    headers = {"Accept-Encoding": make_headers(accept_encoding=True)["accept-encoding"], **config.headers()}
    for name, value in headers.items():
        if "\r" in value or "\n" in value or not _latin1(value):
            # http.client would raise with the value (the token) in its message: say what to fix instead.
            raise SMSNexusError(
                f"The connection's {name} header cannot be sent (a line break or a character outside "
                "Latin-1): check the connection's password (the API token)"
            )
    options: dict[str, Any] = {
        "num_pools": 4,
        "maxsize": POOL_MAXSIZE,
        "headers": headers,
        "retries": False,  # nor redirects: see urllib3_send
        "timeout": urllib3.Timeout(connect=config.timeout, read=config.timeout),
        **ca_bundle_options(config.verify),
    }
    proxy = proxy_for(config)
    if proxy is None:
        return urllib3.PoolManager(**options)
    scheme = proxy.split("://", 1)[0].lower()
    if scheme.startswith("socks"):
        import warnings

        try:
            with warnings.catch_warnings():  # urllib3 warns before it raises; the error below says it all
                warnings.simplefilter("ignore")
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise SMSNexusError(
                "The connection's proxy is a SOCKS proxy: install PySocks (pip install pysocks) to use it"
            ) from None
        return SOCKSProxyManager(proxy, **options)
    if scheme not in ("http", "https"):
        raise SMSNexusError(f"The connection's proxy has the scheme {scheme!r}: use http, https or socks5")
    parts = urlsplit(proxy)
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        options["proxy_headers"] = make_headers(proxy_basic_auth=credentials)
    return urllib3.ProxyManager(proxy, **options)


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def request_url(config: SMSNexusConnectionConfig, path: str, params: dict[str, Any] | None = None) -> str:
    """The URL of a request: the API path on the base URL, with ``params`` url-encoded (None values left out,
    list values repeated, as ``requests`` encoded them)."""
    url = config.url(path)
    if params:
        query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
    return url


def json_bytes(value: Any) -> bytes:
    """A request body as compact UTF-8 JSON."""
    import msgspec

    return msgspec.json.encode(value)


def urllib3_send(
    pool: urllib3.PoolManager, method: str, url: str, body: bytes | None = None
) -> Answer | NoAnswer:
    """
    One attempt of a request through ``pool``; ``body`` is sent as JSON.

    Redirects are not followed (the base URL is the API's own). A 3xx answer to a GET or DELETE is answered as
    it came, an error naming the status; to a POST it is no answer of an unknown outcome: a ``303`` says the
    server acted on it, and posting again elsewhere could send a message twice.
    """
    from urllib3.exceptions import HTTPError

    headers = pool.headers if body is None else {**pool.headers, **_JSON_CONTENT}
    try:
        response = pool.urlopen(method, url, body=body, headers=headers, redirect=False)
    except HTTPError as exc:
        # Only the class travels on: the exception's text may carry the URL (never the headers).
        return urllib3_failure(exc)
    if 300 <= response.status < 400 and method not in REPEATABLE_METHODS:
        return NoAnswer(f"redirect {response.status}, not followed", UNKNOWN)
    return Answer(
        response.status, response.headers, _text(response.data, response.headers.get("Content-Type"))
    )


def _text(data: bytes, content_type: str | None) -> str:
    """The body as text: the charset the answer names, else UTF-8 (JSON's), undecodable bytes replaced."""
    charset = "utf-8"
    if content_type and "charset=" in content_type.lower():
        charset = (
            content_type.lower().split("charset=", 1)[1].split(";", 1)[0].strip().strip("\"'") or charset
        )
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def requests_session(config: SMSNexusConnectionConfig) -> requests.Session:
    """
    A pooled ``requests`` session with the connection's headers, TLS verification and proxies, for ad-hoc
    calls (``hook.get_conn()``); no urllib3 retries. ``requests`` still reads the environment on every request
    of it: pass ``verify=`` per request to keep ``REQUESTS_CA_BUNDLE`` from overriding the ``verify`` extra.
    """
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_MAXSIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(config.headers())
    session.verify = config.verify
    if config.proxies:
        session.proxies.update(config.proxies)
    return session


# -- the async hook: aiohttp ------------------------------------------------------------------------------


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
