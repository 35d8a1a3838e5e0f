"""`gpengine.server_guard`: a server started by a process that is then SIGKILLed stops too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gpengine import server_guard

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

# A stand-in for `gpengine ui`: starts the guard around a long child in a group of its own,
# prints the guard's pid and waits (to be SIGKILLed by the test).
PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    cmd = [sys.executable, "-m", "gpengine.server_guard", str(os.getpid()), "--",
           sys.executable, "-c", "import time; time.sleep(600)"]
    guard = subprocess.Popen(cmd, start_new_session=True)
    print(guard.pid, flush=True)
    time.sleep(600)
""")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pgid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


def _children_of(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(path) as f:
            kids = [int(k) for k in f.read().split()]
        if kids:
            return kids
        time.sleep(0.05)
    return []


def test_the_guarded_group_stops_when_its_starter_is_killed_outright():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    guard = int(parent.stdout.readline())
    try:
        (server,) = _children_of(guard)  # the guarded command has started
        assert os.getpgid(server) == guard  # in the guard's group
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(guard), "the guard's group outlived the process that started it"
    finally:
        if _group_alive(guard):
            os.killpg(guard, signal.SIGKILL)


def test_a_signal_to_the_guard_stops_the_command_and_exits_cleanly():
    guard = subprocess.Popen([sys.executable, "-m", "gpengine.server_guard", str(os.getpid()), "--",
                              sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        assert len(_children_of(guard.pid)) == 1  # the command has started
        guard.send_signal(signal.SIGTERM)
        assert guard.wait(20) == 0
        assert _wait_gone(guard.pid)
    finally:
        if _group_alive(guard.pid):
            os.killpg(guard.pid, signal.SIGKILL)


def test_the_command_line_is_checked():
    assert server_guard.main(["12", "sleep", "1"]) == 2
    assert server_guard.main(["x", "--", "sleep"]) == 2


def test_the_command_starts_with_the_stop_signals_unblocked():
    # The guard blocks them while it starts the command; a mask is inherited across exec, and a
    # server with SIGTERM blocked could not be stopped.
    probe = ("import signal; print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))")
    out = subprocess.run([sys.executable, "-m", "gpengine.server_guard", str(os.getpid()), "--",
                          sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    blocked = {int(s) for s in out.stdout.strip("[]\n").split(",") if s.strip()}
    assert not blocked & {int(s) for s in server_guard.STOP_SIGNALS}


# The guard, with Popen made to signal the guard itself the moment the command has started:
# the worst moment, before Popen has returned the child to stop.
RACE = textwrap.dedent("""
    import os, signal, subprocess, sys
    from gpengine import server_guard
    real_popen = subprocess.Popen

    def popen_then_sigterm(*args, **kwargs):
        child = real_popen(*args, **kwargs)
        print(child.pid, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        return child

    subprocess.Popen = popen_then_sigterm
    sys.exit(server_guard.main([str(os.getppid()), "--", sys.executable, "-c", "import time; time.sleep(600)"]))
""")


def test_a_signal_while_the_command_starts_still_stops_it():
    guard = subprocess.Popen([sys.executable, "-c", RACE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        command = int(guard.stdout.readline())
        assert guard.wait(20) == 0
        assert _wait_gone(guard.pid), f"the command (pid {command}) outlived its guard"
    finally:
        if _group_alive(guard.pid):
            os.killpg(guard.pid, signal.SIGKILL)
