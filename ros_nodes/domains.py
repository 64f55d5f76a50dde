"""Which DDS domain a tool that launches its own system runs on.

The demo and the benchmarks start nodes whose topics (hand/enable, hand/command) would act on any other system of
ours on the same domain, a test suite's or a robot's, so they pick a domain where nothing of ours is heard.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

# below the 30..230 the test suite draws its domains from, and within DDS's 0..232
QUIET_CANDIDATES = range(1, 30)


def quiet_domain(candidates: Sequence[int] = QUIET_CANDIDATES, listen_s: float = 2.0) -> int:
    """A domain from `candidates`, tried in random order, on which none of our systems' steady topics (/clock,
    /trial/status, /hand/enable) is heard for listen_s."""
    from ros_nodes import msgs
    from ros_nodes.transport import SENSOR_QOS, create_node

    for domain in random.sample(list(candidates), len(candidates)):
        heard: list[object] = []
        listener = create_node("domain_probe", backend="dds", domain_id=domain)
        try:
            listener.create_subscription(msgs.Clock, "/clock", heard.append, SENSOR_QOS)
            listener.create_subscription(msgs.String, "/trial/status", heard.append)
            listener.create_subscription(msgs.Bool, "/hand/enable", heard.append)
            listener.spin(timeout_s=listen_s)
        finally:
            listener.shutdown()
        if not heard:
            return domain
    raise RuntimeError(f"every DDS domain in {list(candidates)} carries traffic; stop the other systems or name a "
                       "domain with --domain-id")
