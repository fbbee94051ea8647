"""How the two hooks put one request on the wire: a ``urllib3`` pool for the sync hook, aiohttp for the async one.

Each function turns the connection's transport extras (``verify``, ``proxies``, ``timeout``) and the proxy and
CA-bundle variables of the environment into the library's terms, by one rule for both hooks
(:func:`trusted_ca_bundle`, :func:`proxy_for`), and returns what the server said as an :class:`Answer`, or a
:class:`NoAnswer` naming the failure's class; deciding what that means (retry, raise, unknown outcome) is the
retry driver's job.

The sync hook sends through one :func:`urllib3_pool` per hook rather than a ``requests.Session``: ``requests``
costs about 0.7 ms of CPU per request over the 0.26 ms of the pool under it (most of it merging the environment
into every request), which was 70 % of an export's CPU (``bench/README.md``). What ``requests`` resolved per
request, the pool resolves once, when it is built: the base URL's host is fixed per connection.
:func:`requests_session` remains for ad-hoc calls (``hook.get_conn()``).
"""

from __future__ import annotations

import base64
import ipaddress
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from airflow_provider_smsnexus.exceptions import SMSNexusConfigError
from airflow_provider_smsnexus.hooks._extras import NO_PROXY_KEY
from airflow_provider_smsnexus.hooks.outcomes import (
    REPEATABLE_METHODS,
    UNKNOWN,
    Answer,
    NoAnswer,
    aiohttp_failure,
    urllib3_failure,
)

if TYPE_CHECKING:
    import ssl

    import aiohttp
    import requests
    import urllib3

    from airflow_provider_smsnexus.hooks._config import SMSNexusConnectionConfig

#: Connections kept per host: a campaign sends from up to this many threads through one hook.
POOL_MAXSIZE = 32
_JSON_CONTENT = {"Content-Type": "application/json"}


# -- the rules both hooks follow: the CA bundle and the proxy ------------------------------------------------

#: The variables that name the CA bundle (a file, or a certificate directory) to trust when ``verify`` is true,
#: first set first: ``requests``' two, then OpenSSL's own.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def trusted_ca_bundle(verify: bool | str) -> tuple[str, str] | bool:
    """
    What the ``verify`` extra trusts, for both hooks: ``False`` verifies nothing; a path is the only CA bundle
    (file) or certificate directory trusted, whatever the environment says; ``True`` trusts the first of
    :data:`CA_BUNDLE_VARIABLES` that is set, else certifi's bundle (``requests``' default), read when the hook
    builds its pool or its TLS context.

    :return: ``(path, where it was named)``; ``False``; or ``True`` for the system's store (no variable set
        and certifi missing).
    """
    if isinstance(verify, str):
        return verify, "the verify extra"
    if not verify:
        return False
    for name in CA_BUNDLE_VARIABLES:
        if os.environ.get(name):
            return os.environ[name], name
    try:
        import certifi
    except ImportError:
        return True
    return certifi.where(), "certifi"


def _existing_ca_bundle(verify: bool | str) -> tuple[str, str] | bool:
    """:func:`trusted_ca_bundle`, checked: a path that names nothing is an error naming where it came from."""
    bundle = trusted_ca_bundle(verify)
    if not isinstance(bundle, bool) and not os.path.exists(bundle[0]):
        path, source = bundle
        raise SMSNexusConfigError(
            f"{source} names the CA bundle {path!r}, which does not exist on this machine: point it at a CA "
            "bundle file or certificate directory, or unset it (see the connection's verify extra in the docs)"
        )
    return bundle


def ca_bundle_options(verify: bool | str) -> dict[str, Any]:
    """The ``verify`` extra as urllib3's certificate options, by :func:`trusted_ca_bundle`'s rule."""
    bundle = trusted_ca_bundle(verify)
    if bundle is False:
        return {"cert_reqs": "CERT_NONE"}
    if bundle is True:
        return {"cert_reqs": "CERT_REQUIRED"}  # the system's store
    path = bundle[0]
    return {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(path) else "ca_certs"): path}


def ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """
    The ``verify`` extra as aiohttp's ``ssl`` argument, by :func:`trusted_ca_bundle`'s rule: ``False``, or a
    context trusting the bundle (or the system's store).

    :raises SMSNexusConfigError: the bundle does not exist, or holds no certificate TLS can read.
    """
    import ssl

    bundle = _existing_ca_bundle(verify)
    if bundle is False:
        return False
    if bundle is True:
        return ssl.create_default_context()
    path, source = bundle
    where = {"capath": path} if os.path.isdir(path) else {"cafile": path}
    try:
        return ssl.create_default_context(**where)
    except (OSError, ssl.SSLError):  # OSError: unreadable; SSLError: not PEM
        raise SMSNexusConfigError(
            f"{source} names the CA bundle {path!r}, which holds no certificate TLS can read: point it at a "
            "PEM file or a certificate directory"
        ) from None


def proxy_for(config: SMSNexusConnectionConfig) -> str | None:
    """
    The proxy URL the base URL's requests go through, or None; both hooks follow it.

    The ``proxies`` extra's ``no_proxy`` entry first: a host it names is reached directly. Then the extra's
    proxies (keys as in ``requests``: ``"https://host"``, ``"https"``, ``"all://host"``, ``"all"``), then the
    environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``) unless the host is bypassed: by the extra's
    ``no_proxy`` when it has one (it replaces the environment's), else by ``NO_PROXY``. Entries are read as
    ``requests`` reads them: host suffixes, ``host:port``, IP addresses, CIDR ranges and ``*``.
    """
    parts = urlsplit(config.base_url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    proxies = config.proxies or {}
    no_proxy = proxies.get(NO_PROXY_KEY)
    if no_proxy is not None and _bypasses_proxy(host, parts.port, no_proxy):
        return None
    proxy = _select_proxy(proxies, scheme, host)
    if proxy is None and not _bypasses_proxy(host, parts.port, no_proxy):
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


def _bypasses_proxy(host: str, port: int | None, no_proxy: str | None) -> bool:
    """Whether ``no_proxy`` (None: the environment's ``NO_PROXY``, and the system's settings) names the host."""
    import urllib.request

    from_environment = no_proxy is None
    if from_environment:
        no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    entries = [e.strip() for e in no_proxy.split(",")]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in filter(None, entries):
        if entry == "*":
            return True
        if address is not None:  # an IP host: exact entries and CIDR ranges
            try:
                if entry == host or ("/" in entry and address in ipaddress.ip_network(entry, strict=False)):
                    return True
            except ValueError:
                continue
        elif host.endswith(entry) or (port is not None and f"{host}:{port}".endswith(entry)):
            return True
    return from_environment and bool(urllib.request.proxy_bypass(host))


def proxy_authorization(proxy: str) -> tuple[str, dict[str, str]]:
    """A proxy URL without its credentials, and the ``Proxy-Authorization`` header that carries them (sent to
    the proxy only)."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return proxy, {}
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    try:
        raw = credentials.encode("latin-1")  # what urllib3 and requests send
    except UnicodeEncodeError:
        raw = credentials.encode()  # RFC 7617's UTF-8
    header = "Basic " + base64.b64encode(raw).decode()
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), {"proxy-authorization": header}


# -- the sync hook: one urllib3 pool per hook ------------------------------------------------------------


def urllib3_pool(config: SMSNexusConnectionConfig) -> urllib3.PoolManager:
    """
    The sync hook's connection pool: the connection's headers, TLS verification (:func:`ca_bundle_options`),
    timeouts (``timeout`` for connecting and for each read), its proxy (:func:`proxy_for`), and no retries of
    urllib3's own (the retry driver decides). A ``ProxyManager`` when a proxy applies.

    :raises SMSNexusConfigError: the token cannot be sent in a header, the CA bundle does not exist, or the proxy's
        scheme is not supported.
    """
    import urllib3
    from urllib3.util import make_headers

    headers = {"Accept-Encoding": make_headers(accept_encoding=True)["accept-encoding"], **config.headers()}
    for name, value in headers.items():
        if "\r" in value or "\n" in value or not _latin1(value):
            # http.client would raise with the value (the token) in its message: say what to fix instead.
            raise SMSNexusConfigError(
                f"The connection's {name} header cannot be sent (a line break or a character outside "
                "Latin-1): check the connection's password (the API token)"
            )
    _existing_ca_bundle(config.verify)  # urllib3 would only fail at the first connection, naming no variable
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
            raise SMSNexusConfigError(
                "The connection's proxy is a SOCKS proxy: install PySocks (pip install pysocks) to use it"
            ) from None
        return SOCKSProxyManager(proxy, **options)
    if scheme not in ("http", "https"):
        raise SMSNexusConfigError(
            f"The connection's proxy has the scheme {scheme!r}: use http, https or socks5"
        )
    proxy, options["proxy_headers"] = proxy_authorization(proxy)
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
    """
    The ``verify`` and ``proxies`` extras and the environment in aiohttp's terms (keyword arguments of
    ``request``), by the sync hook's rules: :func:`ssl_context` and :func:`proxy_for`.

    :raises SMSNexusConfigError: the CA bundle does not exist or cannot be read, or the proxy is a SOCKS proxy
        (aiohttp speaks HTTP proxies only).
    """
    options: dict[str, Any] = {"ssl": ssl_context(config.verify)}
    proxy = proxy_for(config)
    if proxy is not None:
        scheme = proxy.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise SMSNexusConfigError(
                f"The connection's proxy has the scheme {scheme!r}: the async hook (triggers) speaks http and "
                "https proxies only"
            )
        # With its credentials: aiohttp sends them to the proxy only (proxy_headers reach it in a CONNECT only).
        options["proxy"] = proxy
    return options


def aiohttp_session(config: SMSNexusConnectionConfig) -> aiohttp.ClientSession:
    """
    A session for the async hook's requests: the connection's ``timeout`` for the whole of each request, and no
    default headers. aiohttp copies a session's default headers into those it sends a proxy, so a default
    ``Authorization`` would hand the API token to the proxy as ``Proxy-Authorization`` (in a ``CONNECT`` too);
    :func:`aiohttp_send` sends the connection's headers with each request instead.
    """
    import aiohttp

    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout))


async def aiohttp_send(
    session: aiohttp.ClientSession,
    config: SMSNexusConnectionConfig,
    options: dict[str, Any],
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
) -> Answer | NoAnswer:
    """One attempt of a request through ``session`` (an :func:`aiohttp_session`), with the connection's headers
    and :func:`aiohttp_options`."""
    import aiohttp

    try:
        url, headers = config.url(path), config.headers()
        async with session.request(method, url, params=params, headers=headers, **options) as response:
            text = await response.text(errors="replace")
            return Answer(response.status, response.headers, text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return aiohttp_failure(exc)
