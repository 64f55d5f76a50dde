"""`inhand bench transport`: round trip of a 24-joint JointState between two processes, printed as JSON, for each
pair of transports measured side by side: dds to dds, rclpy to dds and dds to rclpy (rclpy = Fast DDS, ROS 2's
default RMW; dds = our Cyclone backend), and rclpy to rclpy for reference."""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from typing import Any

import numpy as np

from ros_nodes import msgs
from ros_nodes.domains import quiet_domain
from ros_nodes.transport import create_node, rclpy_available

PING_TOPIC = "/bench/ping"
PONG_TOPIC = "/bench/pong"
# (pinging side, echoing side): the near process pings on the first, the far one echoes on the second
PAIRS = (("dds", "dds"), ("rclpy", "dds"), ("dds", "rclpy"), ("rclpy", "rclpy"))


def _echo(domain_id: int, stop: Any, backend: str) -> None:
    """The far process: decode each ping and publish it back as a pong, until `stop` is set."""
    node = create_node("bench_echo", backend=backend, domain_id=domain_id)
    pong = node.create_publisher(msgs.JointState, PONG_TOPIC)
    node.create_subscription(msgs.JointState, PING_TOPIC, pong.publish)
    while not stop.is_set():
        node.spin_once(0.05)
    node.shutdown()


def _ping(index: int, joints: int) -> msgs.JointState:
    """Ping number `index`: its index rides in header.stamp; 24 joints as the Shadow Hand has."""
    return msgs.JointState(
        header=msgs.Header(stamp=msgs.Time(sec=0, nanosec=index), frame_id="bench"),
        name=[f"rh_joint_{j}" for j in range(joints)],
        position=np.linspace(-1.0, 1.0, joints),
        velocity=np.zeros(joints),
        effort=np.zeros(joints),
    )


def run(count: int, rate_hz: float, joints: int, domain_id: int, ping_backend: str = "dds",
        echo_backend: str = "dds") -> dict[str, Any]:
    """Send `count` pings at rate_hz after a warm-up, return round-trip percentiles (ms) and the lost count."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    echo = context.Process(target=_echo, args=(domain_id, stop, echo_backend), daemon=True)
    echo.start()
    node = create_node("bench_ping", backend=ping_backend, domain_id=domain_id)
    sent_at: dict[int, float] = {}
    round_trips: dict[int, float] = {}

    def on_pong(message: msgs.JointState) -> None:
        index = message.header.stamp.nanosec
        if index in sent_at and index not in round_trips:
            round_trips[index] = time.perf_counter() - sent_at[index]

    node.create_subscription(msgs.JointState, PONG_TOPIC, on_pong)
    ping = node.create_publisher(msgs.JointState, PING_TOPIC)
    try:
        warm_up = count  # indices >= count are warm-up pings, until the echo path works both ways
        deadline = time.monotonic() + 20.0
        while not round_trips:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {echo_backend} echo process never answered the {ping_backend} pings "
                                   "within 20 s (discovery failed?)")
            sent_at[warm_up] = time.perf_counter()
            ping.publish(_ping(warm_up, joints))
            node.spin_once(0.05)
            warm_up += 1
        round_trips.clear()
        messages = [_ping(index, joints) for index in range(count)]
        payload_bytes = len(msgs.serialize(messages[0]))
        start = time.perf_counter()
        for index, message in enumerate(messages):
            while (wait := start + index / rate_hz - time.perf_counter()) > 0:
                node.spin_once(wait)
            sent_at[index] = time.perf_counter()
            ping.publish(message)
        duration_s = time.perf_counter() - start
        node.spin_until(lambda: sum(i < count for i in round_trips) >= count, timeout_s=2.0)
    finally:
        node.shutdown()
        stop.set()
        echo.join(timeout=5.0)
        if echo.is_alive():
            echo.kill()
    measured = np.array([round_trips[i] for i in range(count) if i in round_trips]) * 1e3
    return {
        "ping": ping_backend,
        "echo": echo_backend,
        "messages": count,
        "rate_hz": rate_hz,
        "achieved_rate_hz": round(count / duration_s, 2),
        "joints": joints,
        "payload_bytes": payload_bytes,
        "qos": "KEEP_LAST 10, RELIABLE, VOLATILE",
        "received": int(measured.size),
        "lost": count - int(measured.size),
        "round_trip_ms": {
            name: round(float(np.percentile(measured, q)), 3) if measured.size else None
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "domain_id": domain_id,
    }


def run_pairs(pairs: list[tuple[str, str]], count: int, rate_hz: float, joints: int, domain_id: int) -> dict[str, Any]:
    """Every pair in one run, one after the other on the same domain, keyed "PING_to_ECHO"."""
    figures = {f"{ping}_to_{echo}": run(count, rate_hz, joints, domain_id, ping, echo) for ping, echo in pairs}
    return {"benchmark": "transport_round_trip", "pairs": figures}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the ping-pong and print one JSON object."""
    parser = argparse.ArgumentParser(prog="inhand bench transport", description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="measured messages (default 1000)")
    parser.add_argument("--rate", type=float, default=100.0, help="ping rate in Hz (default 100)")
    parser.add_argument("--joints", type=int, default=24, help="joints per JointState (default 24)")
    parser.add_argument("--pairs", nargs="+", default=None, metavar="PING_to_ECHO",
                        help="which pairs (default: " + " ".join(f"{p}_to_{e}" for p, e in PAIRS)
                        + "; rclpy pairs only where rclpy imports)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="DDS domain (default: one of 1..29 where nothing of ours is heard, so a running system is "
                             "not disturbed)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.rate <= 0 or args.joints < 1:
        parser.error("--count and --joints must be >= 1 and --rate > 0")
    known = {f"{ping}_to_{echo}": (ping, echo) for ping, echo in PAIRS}
    names = args.pairs or [name for name, pair in known.items() if rclpy_available() or "rclpy" not in pair]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"--pairs {unknown[0]!r} is not a pair; choose from {', '.join(known)}")
    domain_id = quiet_domain() if args.domain_id is None else args.domain_id
    print(json.dumps(run_pairs([known[name] for name in names], args.count, args.rate, args.joints, domain_id),
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
