"""The stop signal of every training loop: the first SIGINT or SIGTERM asks, a second SIGINT interrupts."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from sim.stop_signal import StopSignal


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_only_asks_and_a_second_sigint_interrupts(first):
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt):
        with StopSignal() as stop:
            assert not stop.requested
            os.kill(os.getpid(), first)
            assert stop.requested
            os.kill(os.getpid(), signal.SIGTERM)  # a repeated SIGTERM (a scheduler's) still waits for the step
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second SIGINT did not interrupt")
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_outside_the_main_thread_no_handler_is_installed():
    seen = []

    def enter() -> None:
        with StopSignal():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]
