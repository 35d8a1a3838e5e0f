"""Have the kernel signal a process when the process that started it dies (Linux).

Two kinds of helper outlive a search or a command killed with SIGKILL unless the
kernel stops them: loky's evaluation workers (a bnn-cifar worker went on training
beside the search that resumed it) and the MLflow UI server of `gpengine ui` (it
kept the port). Neither library has such a watchdog, and a check between tasks
would miss a worker mid-evaluation; PR_SET_PDEATHSIG does not.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> bool:
    """Ask for `sig` when `parent` dies; False where the platform cannot (not Linux).

    The signal follows the *thread* that started this process: loky starts its
    workers from the thread that submits, the search's own, and `gpengine ui` from
    its main thread. If the parent is already gone, nobody will signal, so exit now.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)
    return True
