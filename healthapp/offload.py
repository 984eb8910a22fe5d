"""A forked helper process for an importer's CPU-bound, database-free step (cleaning rows), so that
its dry run uses the machine's second core while this process reads the file and the database.

Why not ``multiprocessing``: a pool's worker outlives a parent killed with SIGKILL (a worker-kill
test, an OOM kill) and waits on its queue for ever. Here the child reads its work from a pipe whose
only writer is the parent: when the parent goes, the child reads end-of-file and exits. The child
never touches the parent's database connection, files or logging: it runs ``func`` on what it is
sent (pickled) and ends with ``os._exit``, skipping the finalizers of everything it inherited.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_LENGTH = struct.Struct("<Q")


class HelperFailed(RuntimeError):
    """The helper raised (its exception's type only: never a value it was working on) or died."""


def _read(fd: int, size: int) -> bytes | None:
    parts, left = [], size
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _receive(fd: int) -> Any:
    head = _read(fd, _LENGTH.size)
    if head is None:
        raise EOFError
    body = _read(fd, _LENGTH.unpack(head)[0])
    if body is None:
        raise EOFError
    return pickle.loads(body)  # noqa: S301  (from our own fork, over a pipe only it and we hold)


def _send(fd: int, data: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class Helper:
    """``submit(item)`` sends work to the child; ``result()`` returns ``func(item)`` of the oldest
    item not yet returned (in order). Writes go through a thread, so that a large item waiting for the
    child to read it never blocks this process from reading the child's result. Use as a context
    manager; ``close`` waits for the child to exit."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        work_r, work_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                os.close(work_w)
                os.close(done_r)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                while True:
                    try:
                        item = _receive(work_r)
                    except EOFError:
                        break
                    try:
                        answer = (True, func(item))
                    except Exception as exc:  # its type goes back; the parent raises
                        answer = (False, type(exc).__name__)
                    _send(done_w, pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(work_r)
        os.close(done_w)
        self.pid, self._work, self._done = pid, work_w, done_r
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helper-feed")
        self._sending: Future | None = None

    def submit(self, item: Any) -> None:
        self._sending = self._writer.submit(_send, self._work, pickle.dumps(item, pickle.HIGHEST_PROTOCOL))

    def ready(self) -> bool:
        """Whether a result is there to read without waiting for the child."""
        return bool(select.select([self._done], [], [], 0)[0])

    def result(self) -> Any:
        try:
            ok, value = _receive(self._done)
        except EOFError:
            if self._sending is not None and self._sending.done():
                self._sending.result()  # a broken pipe says more than the end of file
            raise HelperFailed("the helper process ended") from None
        if not ok:
            raise HelperFailed(f"the helper process raised {value}")
        return value

    def close(self) -> None:
        # Results first: a child still writing one nobody reads (the parent stopped early) gets a broken
        # pipe and exits, which in turn unblocks a feed waiting for it to read; then the end of the work.
        os.close(self._done)
        self._writer.shutdown(wait=True, cancel_futures=True)
        os.close(self._work)
        os.waitpid(self.pid, 0)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
