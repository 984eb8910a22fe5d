"""The forked helper process of the importers' dry runs: results in order, failures named by type
only, and no process left behind however the parent stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from healthapp.offload import Helper, HelperFailed

ROOT = str(Path(__file__).resolve().parents[2])


def _square(n: int) -> int:
    return n * n


def _refuse(text: str) -> str:
    raise ValueError(f"bad value {text}")


def _die(_: object) -> None:
    os._exit(3)


def _gone(pid: int) -> bool:
    """The process ended (reaped, or a zombie waiting for whoever adopted it)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


def test_results_come_back_in_the_order_the_work_was_sent_and_the_child_exits_on_close():
    with Helper(_square) as helper:
        for n in range(5):
            helper.submit(n)
        assert [helper.result() for _ in range(5)] == [0, 1, 4, 9, 16]
        pid = helper.pid
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped by close


def test_an_error_in_the_helper_is_raised_here_by_its_type_never_with_the_value():
    with Helper(_refuse) as helper:
        helper.submit("山田 太郎")
        with pytest.raises(HelperFailed) as caught:
            helper.result()
    assert "ValueError" in str(caught.value) and "山田" not in str(caught.value)


def test_a_helper_that_dies_is_reported_not_waited_for():
    with Helper(_die) as helper:
        helper.submit(1)
        with pytest.raises(HelperFailed, match="ended"):
            helper.result()


def test_stopping_with_large_work_unread_does_not_hang():
    """The parent stops early (an error in the file): the child may be blocked writing a result nobody
    reads while the feed is blocked writing the next item; closing must undo both. Run apart, so that a
    hang fails the test instead of stopping the run."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from healthapp.offload import Helper\n"
        "big = [f'{n:0200d}' for n in range(5000)]  # 1 MB pickled: more than a pipe holds\n"
        "with Helper(lambda items: items) as helper:\n"
        "    for _ in range(4):\n"
        "        helper.submit(big)\n"
        "    time.sleep(0.5)  # the child has the first item and is writing its result\n"
        "print('closed')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "closed"


def test_the_helper_exits_when_its_parent_is_killed():
    script = (
        "import os, signal, sys, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from healthapp.offload import Helper\n"
        "helper = Helper(abs)\n"
        "print(helper.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)
