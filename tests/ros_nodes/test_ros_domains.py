"""quiet_domain passes over a domain on which one of our systems publishes, and names the range when none is quiet."""
from __future__ import annotations

import random
import threading

import pytest

from ros_nodes import msgs
from ros_nodes.domains import quiet_domain
from ros_nodes.transport import create_node


@pytest.fixture
def busy_domain():
    """A domain with a goal manager's /trial/status on it, published at 20 Hz from a thread."""
    domain = random.randint(30, 230)
    node = create_node("goal_manager", backend="dds", domain_id=domain)
    publisher = node.create_publisher(msgs.String, "/trial/status")
    stop = threading.Event()

    def publish() -> None:
        while not stop.wait(0.05):
            publisher.publish(msgs.String(data='{"trial": 0}'))

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    yield domain
    stop.set()
    thread.join()
    node.shutdown()


def test_a_domain_with_our_traffic_is_passed_over(busy_domain):
    quiet = busy_domain + 1 if busy_domain < 230 else busy_domain - 1
    for _ in range(3):  # the candidates are tried in random order
        assert quiet_domain([busy_domain, quiet], listen_s=1.0) == quiet


def test_no_quiet_domain_names_the_candidates(busy_domain):
    with pytest.raises(RuntimeError, match=rf"\[{busy_domain}\] carries traffic"):
        quiet_domain([busy_domain], listen_s=1.0)
