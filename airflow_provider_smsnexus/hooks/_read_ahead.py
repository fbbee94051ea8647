"""Walking a paginated list page by page, or one page ahead for a caller that reads every page: the one walk
both hooks drive (the sync hook in a loop, the async hook awaiting each page), which asks for pages instead of
fetching them, so a walk never calls back up into its hook.

The walk is the one of :class:`~airflow_provider_smsnexus.hooks.pagination.PageWalker`: the caller's thread
hands every page to ``walker.take`` in order and asks ``walker.is_done`` and ``walker.walk_is_over``, on the
same pages whether it reads ahead or not.

Which requests a walk makes is the caller's to decide. Page n+1 is a request the walk makes only if the caller
asks for more after page n; a caller that stops there (``any(...)`` finding its row, a lookup) must not pay
for it. So by default page n+1 is requested when the caller asks for it, and a walk stopped after page n has
cost exactly n requests. A caller that reads every page and works long on each (it stops early only on an
error) says so with ``walker.read_ahead``: then ``is_done(page n)`` is asked right after ``take(page n)``, before page n's
rows are yielded, and when it says the pass goes on, page n+1 is requested at once in the background while the
caller works on page n. Either way a walk makes exactly the requests it made page by page -- a walk that stops
before ``last_page`` (a newest-first window proven) fetches no page past its end -- and at most one page is
held ahead.
"""

from __future__ import annotations

import threading
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator

    from airflow_provider_smsnexus.hooks.pagination import PageWalker


@dataclass(frozen=True)
class PageRequest:
    """
    A page the hook fetches now, in the caller's thread or task, and sends back decoded into the walk.

    :param page: the page number, from 1.
    :param stop: set once the page is no longer wanted (pass it to the retry driver).
    """

    page: int
    stop: threading.Event


def walk_pages(
    walker: PageWalker, fetch_ahead: Callable[[int, threading.Event], dict[str, Any]] | None = None
) -> Generator[PageRequest | list[dict[str, Any]], dict[str, Any] | None, None]:
    """
    One walk of a list, without I/O of its own in the caller's thread: it yields a :class:`PageRequest` for
    each page the hook must fetch (send the decoded answer back), and each page's new rows (send None back),
    as ``walker`` decides. Both hooks drive it, the sync one in a loop, the async one awaiting each page.

    Page by page, a page is requested when the caller asks for more: a caller that stops after page n
    (``break``, ``any(...)``) has made n requests. Read ahead (``walker.read_ahead`` and ``fetch_ahead``
    given), one background thread (started with the first page fetched ahead, so a one-page list starts none)
    fetches page n+1 with ``fetch_ahead`` while the caller works on page n, through the same limiter, retry
    driver and stats as the caller's. An error of an ahead request is raised here when its page is consumed,
    as if it had been fetched then. Closing the walk early stops the ahead request at its next wait, waits for
    one already sent, and ends the thread before ``close()`` returns; its page is dropped.

    :param walker: decides which rows are new and when a pass and the walk are over, and whether to read ahead.
    :param fetch_ahead: fetches page n in the background thread; None: never read ahead.
    """
    stop = threading.Event()
    ahead: _Ahead | None = None
    read_ahead = walker.read_ahead and fetch_ahead is not None
    try:
        while True:  # one pass per turn; only walkers proven by a count take more than one
            page = 1
            body = yield PageRequest(page, stop)
            while True:
                rows = walker.take(body)
                try:
                    done, error = walker.is_done(body, page), None
                except Exception as exc:  # raised after this page's rows, where it was raised before
                    done, error = True, exc
                if not done and read_ahead:
                    ahead = ahead or _Ahead(fetch_ahead, stop)
                    ahead.request(page + 1)
                if rows:
                    yield rows
                if error is not None:
                    raise error
                if done:
                    break
                page += 1
                # Here the caller has asked for more (or page n had no new rows to hand it).
                body = ahead.result() if ahead is not None else (yield PageRequest(page, stop))
            if walker.walk_is_over():
                return
    finally:
        stop.set()
        if ahead is not None:
            ahead.close()


def iter_pages(
    walker: PageWalker, fetch: Callable[[int, threading.Event], dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    """
    The sync hook's walk: each page's new rows, with each page fetched by ``fetch`` (page n, ``stop``) in the
    caller's thread, or ahead in the background when ``walker.read_ahead`` says so (see :func:`walk_pages`).
    """
    steps = walk_pages(walker, fetch)
    with closing(steps):
        try:
            step = next(steps)
            while True:
                if isinstance(step, PageRequest):
                    step = steps.send(fetch(step.page, step.stop))
                else:
                    yield step
                    step = steps.send(None)
        except StopIteration:
            return


async def aiter_pages(
    walker: PageWalker, fetch: Callable[[int], Awaitable[dict[str, Any]]]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The async hook's walk: the same walk as :func:`iter_pages`, each page awaited from ``fetch`` (page n)."""
    steps = walk_pages(walker)
    with closing(steps):
        try:
            step = next(steps)
            while True:
                if isinstance(step, PageRequest):
                    step = steps.send(await fetch(step.page))
                else:
                    yield step
                    step = steps.send(None)
        except StopIteration:
            return


class _Ahead:
    """At most one page in flight on one background thread (two C queues: no future, no condition per page)."""

    def __init__(
        self, fetch: Callable[[int, threading.Event], dict[str, Any]], stop: threading.Event
    ) -> None:
        from queue import SimpleQueue

        self._fetch, self._stop = fetch, stop
        self._asked: SimpleQueue[int | None] = SimpleQueue()
        self._answers: SimpleQueue[tuple[bool, Any]] = SimpleQueue()
        self._pending = False
        self._thread = threading.Thread(target=self._run, name="smsnexus-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (page := self._asked.get()) is not None:
            try:
                self._answers.put((True, self._fetch(page, self._stop)))
            except BaseException as exc:  # raised in the caller's thread when the page is consumed
                self._answers.put((False, exc))

    def request(self, page: int) -> None:
        assert not self._pending, "one page ahead at most"
        self._pending = True
        self._asked.put(page)

    def result(self) -> dict[str, Any]:
        assert self._pending
        self._pending = False
        ok, value = self._answers.get()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Drop the page in flight (its error too) and end the thread; ``stop`` is set already."""
        self._asked.put(None)
        self._thread.join()
