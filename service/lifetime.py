"""Processes that end with the process that started them.

`serve` starts a redis-server and worker processes. Stopped by a signal it can handle, it stops
them itself; killed outright (SIGKILL: the OOM killer, `kill -9`, a container runtime that gives
up) it runs no code at all, so they must notice on their own, or they run on for good, each worker
holding the model in memory. On Linux the kernel tells them: PR_SET_PDEATHSIG has it send a signal
to a process when its parent dies. (Strictly when the parent's *thread* that forked it ends, which
is why `serve` starts them from its main thread and the signal is set in the child itself, right
after the fork.) A worker also looks at its parent twice a second: where there is no such signal
that is how it notices, and everywhere it makes sure the worker is gone a few seconds later.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _find_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up once, here: the preexec function below runs in a just-forked child, which should not load libraries.
_prctl = _find_prctl()


def set_death_signal(sig: int) -> bool:
    """Have the kernel send `sig` to this process when its parent dies; False where it cannot."""
    return _prctl is not None and _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def dies_with_this_process(sig: int = signal.SIGTERM):
    """A `preexec_fn` for subprocess.Popen: the child gets `sig` when this process dies, however it
    dies. It runs in the child between fork and exec, so it also covers programs that cannot watch
    their parent themselves (redis-server)."""
    parent = os.getpid()

    def preexec() -> None:
        set_death_signal(sig)
        if os.getppid() != parent:  # the parent died before the signal was set: nothing would ever send it
            os._exit(1)

    return preexec


def stop_with_parent(parent_pid: int, poll_s: float = 0.5, grace_s: float = 3.0, death_signal: bool = True) -> None:
    """In a process `serve` started (`parent_pid`): when that process is gone, SIGHUP this one
    (service.__main__.exit_on_signals turns it into SystemExit: a job or a self-check unwinds, its
    temporary folders removed), and if it still runs `grace_s` later, end it on the spot: RQ catches
    the SystemExit of the job it runs and goes on to wait for a Redis that went with `serve`, and a
    long torch call holds off Python's signal handlers until it returns.
    `death_signal=False` leaves the kernel out: the parent is only looked at (as where there is no
    PR_SET_PDEATHSIG)."""
    signalled = death_signal and set_death_signal(signal.SIGHUP)
    if os.getppid() != parent_pid:
        signalled = False  # already gone before the signal was set: the kernel will not send it

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        log.warning("the process that started this one (pid %d) is gone: stopping", parent_pid)
        if not signalled:
            os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(grace_s)
        log.warning("still running %.0f s after its parent went: exiting now", grace_s)
        os._exit(128 + signal.SIGHUP)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
