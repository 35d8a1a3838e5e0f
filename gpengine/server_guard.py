"""Run a server command so that it stops when the process that started it dies.

    python -m gpengine.server_guard PARENT_PID -- COMMAND...

`gpengine ui` starts MLflow's server in a process group of its own (so that a
Ctrl-C in the terminal reaches `gpengine ui` alone, which then stops the whole
group cleanly). If `gpengine ui` is itself killed with SIGKILL, nothing would
stop that group, and the server would keep the port. This guard leads the
group: the kernel sends it SIGTERM when PARENT_PID dies (PR_SET_PDEATHSIG), and
on SIGTERM, SIGHUP or SIGINT it stops its group (the server and the workers it
started), waiting a grace period before SIGKILL. It exits with the server's status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from gpengine.parent_death import die_with_parent

GRACE_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    # Ignore the next ones before anything else: a second signal (the group's own SIGTERM, a
    # SIGHUP) arriving while the first is handled would raise out of the stop and leave the
    # server running without its guard.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop


def stop_group(pgid: int, proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to process group `pgid`, then SIGKILL if `proc`, one of its members, has not ended after `grace` s."""
    try:
        os.killpg(pgid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)  # the guard's own group: this process too, and nothing is left to do
        proc.wait()
    except ProcessLookupError:  # the group has already gone
        pass


def _unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        print("usage: python -m gpengine.server_guard PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stop)
    die_with_parent(int(args[0]), signal.SIGTERM)  # SIGTERM, not SIGKILL: this process has a group to stop
    child = None
    # Stop signals wait while the server starts: one arriving after Popen forked but before `child`
    # is set would find no child to stop and leave the server running. The server itself starts
    # with them unblocked (a signal mask is inherited across exec), so SIGTERM still stops it.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:
            child = subprocess.Popen(args[2:], preexec_fn=_unblock_stop_signals)
        finally:
            _unblock_stop_signals()  # a signal that came meanwhile is handled here, with `child` set
        return child.wait()
    except _Stop:  # the handler has set the stop signals to be ignored: the group's SIGTERM reaches this process too
        if child is not None:
            stop_group(os.getpgrp(), child)
        return 0


if __name__ == "__main__":
    sys.exit(main())
