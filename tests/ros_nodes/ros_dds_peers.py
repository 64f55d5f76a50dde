"""Processes started with multiprocessing (spawn) by the DDS tests: a JointState publisher."""
from __future__ import annotations

import time

import numpy as np

from ros_nodes import msgs
from ros_nodes.transport import create_node


def joint_state(index: int) -> msgs.JointState:
    """The index-th message of the stream: 24 joints whose positions encode the index."""
    return msgs.JointState(
        header=msgs.Header(stamp=msgs.Time.from_ns(index * 10_000_000), frame_id="hand"),
        name=[f"joint_{j}" for j in range(24)],
        position=index + np.arange(24) / 100.0,
        velocity=np.full(24, -float(index)),
        effort=np.zeros(0),
    )


def publish_joint_states(domain_id: int, count: int, rate_hz: float, result: object) -> None:
    """Wait for a subscriber, publish `count` joint states at rate_hz on /robot/hand/joint_states, then linger."""
    node = create_node("publisher", "/robot", backend="dds", domain_id=domain_id)
    publisher = node.create_publisher(msgs.JointState, "hand/joint_states")
    deadline = time.monotonic() + 15.0
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            result.put("no subscriber matched within 15 s")  # type: ignore[attr-defined]
            node.shutdown()
            return
        time.sleep(0.01)
    sent = 0

    def tick() -> None:
        nonlocal sent
        if sent < count:
            publisher.publish(joint_state(sent))
            sent += 1

    node.create_timer(1.0 / rate_hz, tick)
    started = time.monotonic()
    node.spin_until(lambda: sent >= count, timeout_s=count / rate_hz + 10.0)
    elapsed = time.monotonic() - started
    node.spin(timeout_s=0.5)  # let reliable retransmissions finish before the writer goes away
    node.shutdown()
    result.put(("sent", sent, elapsed))  # type: ignore[attr-defined]
