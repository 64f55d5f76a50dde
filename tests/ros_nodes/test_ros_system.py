"""The sim system as separate processes via `inhand launch launch/sim_state.launch.yaml`, every node on rclpy, and
the driver on dds with the rest on rclpy: driver, goal manager, policy and recorder close the loop for 200+ control
steps of sim time; the bag holds every topic with nothing lost on the reliable ones; Ctrl-C stops everything within
5 s. A missing checkpoint stops the launch with a clear message. A stock rclpy node sees and steers the dds system."""
from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.bag import BagReader
from ros_nodes.bench_system import launch_system, stop_system, write_untrained_checkpoint
from ros_nodes.launch import load_launch, share_directory
from ros_nodes.transport import create_node
from ros_stock_peer import probe_report, start_probe

PERIOD_NS = 80_000_000
STEPS = 200
CAMERAS = ("left", "front", "right")


def diagnostic_values(bag: BagReader, name: str) -> list[tuple[int, dict[str, str]]]:
    """(stamp, key -> value) of every /diagnostics status of node `name`."""
    found = []
    for record in bag.messages(["/diagnostics"]):
        for status in record.message.status:
            if status.name.startswith(f"{name}:"):
                found.append((record.message.header.stamp.to_ns(), {kv.key: kv.value for kv in status.values}))
    return found


@pytest.mark.parametrize(
    "node_transports", [{}, {"hand_driver": "dds"}], ids=["all_on_rclpy", "driver_on_dds_rest_on_rclpy"])
def test_sim_system_closes_the_loop_records_everything_and_stops_on_ctrl_c(
    tmp_path: Path, node_transports: dict[str, str]
) -> None:
    checkpoint = write_untrained_checkpoint(tmp_path / "policy.pt", dense_size=32, lstm_size=16, seed=1)
    domain = random.randint(30, 230)
    bag_path = tmp_path / "bag"
    operator = create_node("operator", backend="dds", domain_id=domain)
    enable = operator.create_publisher(msgs.Bool, "/hand/enable")
    newest_state = [0]
    statuses: list[dict] = []
    operator.create_subscription(msgs.JointState, "/hand/joint_states",
                                 lambda m: newest_state.__setitem__(0, m.header.stamp.to_ns()))
    operator.create_subscription(msgs.String, "/trial/status", lambda m: statuses.append(json.loads(m.data)))
    runner = launch_system(checkpoint, bag_path, tmp_path / "log", domain, camera_size=32,
                           extra=["trial_timeout_s:=4.0"], transport="rclpy", node_transports=node_transports)
    try:
        deadline = time.monotonic() + 120.0  # generous: torch imports slowly beside a training run on 2 cores
        # 200 steps after the recorder can have seen the first, plus the steps around start and stop
        while newest_state[0] < (STEPS + 15) * PERIOD_NS:
            assert runner.poll() is None and time.monotonic() < deadline, stop_system(runner)[1]
            operator.spin_once(0.1)
            if enable.get_subscription_count() >= 2 and newest_state[0] % (40 * PERIOD_NS) == 0:
                enable.publish(msgs.Bool(data=True))  # the operator's enable (the driver starts enabled anyway)
        code, output, stop_s = stop_system(runner)
    finally:
        operator.shutdown()
        if runner.poll() is None:
            runner.kill()
    assert code == 0, output
    assert "started /hand_driver (pid" in output and f"on {node_transports.get('hand_driver', 'rclpy')}:" in output
    assert "started /policy (pid" in output and "on rclpy: ros_nodes.policy" in output
    assert stop_s < 5.0, output
    assert "still running" not in output  # no node needed SIGTERM
    assert "exited with code" not in output, output  # every node closed cleanly

    assert statuses and all({"trial", "state", "successes", "results"} <= set(s) for s in statuses)
    assert statuses[-1]["trial"] >= 2 and len(statuses[-1]["results"]) >= 1  # trials of 4 s ended, goals counted

    with BagReader(bag_path) as bag:
        counts: dict[str, int] = {}
        for record in bag.messages(raw=True):
            counts[record.topic] = counts.get(record.topic, 0) + 1
        graph = ["/hand/joint_states", "/hand/command", "/hand/enable", "/hand/reset", "/object/pose_true",
                 "/object/pose_sensed",
                 "/goal/orientation", "/trial/status", "/diagnostics", "/clock",
                 *(f"/cameras/{c}/{kind}" for c in CAMERAS for kind in ("image_raw", "camera_info"))]
        assert all(counts.get(topic, 0) >= 1 for topic in graph), counts
        states = [r.message.header.stamp.to_ns() for r in bag.messages(["/hand/joint_states"])]
        commands = [r.message.header.stamp.to_ns() for r in bag.messages(["/hand/command"])]
        images = [r.message for r in bag.messages(["/cameras/front/image_raw"])]
        driver = diagnostic_values(bag, "hand_driver")
        policy = diagnostic_values(bag, "policy")

    # reliable joint states: every control step from the first recorded to the last, none lost
    assert len(states) >= STEPS
    assert np.all(np.diff(states) == PERIOD_NS), "a joint state is missing from the bag"
    # the driver's own count of steps (= joint states published) between two of its diagnostics matches the bag
    (first_stamp, first), (last_stamp, last) = driver[0], driver[-1]
    published = int(last["control_periods"]) - int(first["control_periods"])
    assert published >= 150
    assert published == sum(first_stamp < s <= last_stamp for s in states)
    # the policy's count of commands between two of its diagnostics matches the bag, and it commanded most steps
    started = next(values for _, values in policy if int(values["commands_published"]) > 0)
    published = int(policy[-1][1]["commands_published"]) - int(started["commands_published"])
    window = (int(started["last_command_stamp_ns"]), int(policy[-1][1]["last_command_stamp_ns"]))
    assert published == sum(window[0] < s <= window[1] for s in commands) and published >= 100
    assert len(set(commands)) == len(commands) and set(commands) <= set(states)  # one command per state
    assert int(policy[-1][1]["lstm_resets"]) >= 2
    assert (images[-1].height, images[-1].width, images[-1].encoding) == (32, 32, "rgb8")


def test_a_missing_checkpoint_stops_the_launch_with_a_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "policy_z.pt"
    runner = launch_system(missing, tmp_path / "bag", tmp_path / "log", random.randint(30, 230), camera_size=16)
    try:
        output, _ = runner.communicate(timeout=60.0)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 2, output
    # the driver (goal mode), the goal manager (task settings) and the policy all read the checkpoint; the first
    # to exit stops the others
    assert re.search(r"process (hand_driver|goal_manager|policy) \(pid \d+\) exited with code 2; stopping the "
                     r"others", output), output
    assert f"[policy] policy: {missing}: checkpoint file not found" in output  # the nodes' output goes to the screen


def test_launch_files_wire_the_policy_into_each_graph() -> None:
    sim = {node.name: node for node in load_launch(share_directory() / "launch" / "sim_state.launch.yaml").nodes}
    assert list(sim) == ["hand_driver", "goal_manager", "policy", "recorder"]
    assert sim["policy"].parameters == {
        "use_sim_time": True, "checkpoint": f"{share_directory()}/assets/checkpoints/policy_z.pt",
        "fingertips": "sensed"}  # the sim's fingertip markers, with the env's noise
    # the goal manager judges on the truth, as the env does; the policy sees it through the env's observation noise
    assert sim["goal_manager"].remappings == [("object/pose", "object/pose_true")]
    assert sim["policy"].remappings == [("object/pose", "object/pose_sensed")]

    real = {node.name: node for node in load_launch(
        share_directory() / "launch" / "real.launch.yaml", {"checkpoint": "/ckpt.pt", "pose_topic": "/mocap/cube"}).nodes}
    assert list(real) == ["hand_driver", "goal_manager", "policy", "recorder"]
    assert real["hand_driver"].parameters == {"backend": "shadow", "start_enabled": False}
    assert real["policy"].parameters == {"checkpoint": "/ckpt.pt", "ema_start": "measured"}
    for name in ("goal_manager", "policy", "recorder"):
        assert real[name].remappings == [("object/pose", "/mocap/cube")]


def test_a_stock_rclpy_node_sees_and_steers_the_dds_system(tmp_path: Path) -> None:
    """What a ROS 2 host sees of `inhand launch ... --transport dds`: topics, node names, and its hand/enable obeyed."""
    checkpoint = write_untrained_checkpoint(tmp_path / "policy.pt", dense_size=32, lstm_size=16, seed=1)
    domain = random.randint(30, 230)
    observer = create_node("observer", backend="dds", domain_id=domain)
    driver_enabled: list[tuple[int, str]] = []
    policy_up: list[bool] = []

    def on_diagnostics(message: msgs.DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith("hand_driver:"):
                values = {kv.key: kv.value for kv in status.values}
                driver_enabled.append((message.header.stamp.to_ns(), values["enabled"]))
            policy_up.append(status.name.startswith("policy:"))

    observer.create_subscription(msgs.DiagnosticArray, "/diagnostics", on_diagnostics)
    runner = launch_system(checkpoint, tmp_path / "bag", tmp_path / "log", domain, camera_size=16,
                           extra=["record_images:=false"], transport="dds")
    probe = None
    try:
        # every node is up (the policy, slowest to import, reports diagnostics) before the stock node looks
        assert observer.spin_until(lambda: driver_enabled and any(policy_up), timeout_s=120.0), stop_system(runner)[1]
        assert driver_enabled[-1][1] == "true"  # the sim driver starts enabled
        probe = start_probe(domain, {"/hand/joint_states": "sensor_msgs/msg/JointState"}, seconds=4.0,
                            max_seconds=30.0)
        while probe.poll() is None:
            observer.spin_once(0.1)
        report = probe_report(probe)
        observer.spin(timeout_s=0.5)
        code, output, _ = stop_system(runner)
    finally:
        observer.shutdown()
        for process in (probe, runner):
            if process is not None and process.poll() is None:
                process.kill()
    assert code == 0, output
    assert report["counts"].get("/hand/joint_states", 0) >= 10, report
    state = msgs.deserialize(bytes.fromhex(report["last"]["/hand/joint_states"]), msgs.JointState)
    assert len(state.name) == 24 and state.position.shape == (24,)
    assert {"/hand_driver", "/policy", "/goal_manager", "/recorder"} <= set(report["nodes"]), report["nodes"]
    assert report["publishers"]["/hand/joint_states"] == ["/hand_driver"]
    assert "/hand_driver" in report["subscribers"]["/hand/enable"]
    assert driver_enabled[-1][1] == "false"  # the probe's hand/enable false: the driver holds
