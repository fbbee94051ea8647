"""A pytest plugin: an active ``responses`` mock also answers the sync hook's requests, which go through urllib3.

``responses`` intercepts ``requests``' adapter; ``SMSNexusHook`` sends through its own ``urllib3`` pool. While
a mock is active, this plugin hands each request of the hook (recognised by its User-Agent) to the mock at
urllib3's connection-pool level: the hook's URL building, headers, JSON encoding, answer decoding and error
classification all run as in production, only the socket is replaced. The mock's answer comes back as the
``urllib3`` response it already is; an exception registered as a body is raised as urllib3 would raise it (a
``requests`` exception wrapping a urllib3 one, as ``requests`` itself wraps them, is unwrapped). The call is
recorded in ``responses.calls`` with the request as the hook sent it.
"""

from __future__ import annotations

from typing import Any

import pytest

#: The User-Agent of the hook's requests (``SMSNexusConnectionConfig.headers``).
HOOK_AGENT = "airflow-provider-smsnexus"


def _serve_from_mock(original: Any, real_send: Any) -> Any:
    import requests
    from urllib3.exceptions import HTTPError, MaxRetryError

    def urlopen(
        self: Any, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kw: Any
    ):
        mocked = requests.adapters.HTTPAdapter.send is not real_send
        if not mocked or (headers or {}).get("User-Agent") != HOOK_AGENT:
            return original(self, method, url, body, headers, *args, **kw)
        if "://" not in url:  # origin form: the pool knows the scheme and host
            default = {"http": 80, "https": 443}[self.scheme]
            netloc = self.host if self.port in (None, default) else f"{self.host}:{self.port}"
            url = f"{self.scheme}://{netloc}{url}"
        prepared = requests.Request(method, url, headers=dict(headers), data=body).prepare()
        try:
            return requests.adapters.HTTPAdapter(max_retries=0).send(prepared).raw
        except requests.RequestException as exc:
            inner = exc.args[0] if exc.args else None
            inner = inner.reason if isinstance(inner, MaxRetryError) else inner
            if isinstance(inner, HTTPError):
                raise inner from None
            raise

    return urlopen


@pytest.fixture(autouse=True, scope="session")
def _responses_answer_urllib3() -> Any:
    import requests
    from urllib3.connectionpool import HTTPConnectionPool

    original = HTTPConnectionPool.urlopen
    HTTPConnectionPool.urlopen = _serve_from_mock(original, requests.adapters.HTTPAdapter.send)
    yield
    HTTPConnectionPool.urlopen = original
