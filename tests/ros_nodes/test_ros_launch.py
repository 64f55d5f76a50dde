"""inhand launch: the YAML subset, substitutions, errors, and real processes started, stopped and failing together."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_nodes import msgs
from ros_nodes.bag import BagReader
from ros_nodes.launch import LaunchError, load_launch, parameter_text, share_directory
from ros_nodes.transport import create_node

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_vars_groups_includes_params_and_remaps(tmp_path: Path) -> None:
    write(tmp_path / "params.yaml", "/**:\n  ros__parameters:\n    seed: 4\n"
          "goals:\n  ros__parameters:\n    trials: 2\n    nested: {depth: 3}\n")
    write(tmp_path / "inner.launch.yaml", """
launch:
- arg: {name: mode, default: xyz}
- node:
    pkg: inhand
    exec: goal_manager
    name: goals
    param:
    - from: $(var dir)/params.yaml
    - {name: goal_mode, value: $(var mode)}
    - {name: timeout_s, value: $(var timeout)}
    remap:
    - {from: object/pose, to: object/pose_true}
""")
    write(tmp_path / "main.launch.yaml", """
launch:
- arg: {name: ns, default: robot}
- arg: {name: timeout}
- arg: {name: dir, default: unused}
- group:
  - push-ros-namespace: {namespace: $(var ns)}
  - include:
      file: inner.launch.yaml
      arg:
      - {name: mode, value: z}
- node: {pkg: inhand, exec: recorder, namespace: /other, param: [{name: bag, value: "$(find-pkg-share inhand)/b"}],
         on_exit: shutdown, env: [{name: INHAND_TRANSPORT, value: dds}, {name: N, value: 2}]}
""")
    plan = load_launch(tmp_path / "main.launch.yaml", {"timeout": "12.5", "dir": str(tmp_path)})
    goals, recorder = plan.nodes
    assert (goals.name, goals.namespace, goals.module) == ("goals", "/robot", "ros_nodes.goal_manager")
    assert goals.parameters == {"seed": 4, "trials": 2, "nested.depth": 3, "goal_mode": "z", "timeout_s": 12.5}
    assert goals.remappings == [("object/pose", "object/pose_true")]
    assert (recorder.name, recorder.namespace) == ("recorder", "/other")
    assert recorder.parameters == {"bag": f"{share_directory()}/b"}
    assert (recorder.on_exit, recorder.environment) == ("shutdown", {"INHAND_TRANSPORT": "dds", "N": "2"})
    assert (goals.on_exit, goals.environment) == (None, {})
    command = goals.command()
    assert command[1:4] == ["-m", "ros_nodes.goal_manager", "--ros-args"]
    assert "__ns:=/robot" in command and "object/pose:=object/pose_true" in command and "timeout_s:=12.5" in command
    assert parameter_text("1") == '"1"' and parameter_text("z") == "z" and parameter_text(True) == "true"
    with pytest.raises(LaunchError, match="argument 'timeout' has no default; pass timeout:=VALUE"):
        load_launch(tmp_path / "main.launch.yaml", {"dir": str(tmp_path)})
    with pytest.raises(LaunchError, match="argument 'tiemout' is not declared"):
        load_launch(tmp_path / "main.launch.yaml", {"timeout": "1", "tiemout": "2", "dir": str(tmp_path)})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- executable: {cmd: ls}", "tag 'executable' is not supported by inhand launch; supported: arg, node, group"),
        ("- node: {pkg: inhand, exec: recorder, respawn: true}", "'node' attribute 'respawn' is not supported"),
        ("- node: {pkg: turtlesim, exec: turtlesim_node}", "pkg 'turtlesim' cannot run without ROS 2"),
        ("- node: {pkg: inhand, exec: talker}", "exec 'talker' is not an inhand node"),
        ("- node: {pkg: inhand, exec: recorder, name: $(eval 1+1)}", r"substitution \$\(eval 1\+1\) is not supported"),
        ("- node: {pkg: inhand, exec: recorder, output: own_log}", "output 'own_log' is not supported"),
        ("- node: {pkg: inhand, exec: recorder, on_exit: restart}", "on_exit 'restart' is not supported; supported: shutdown"),
        ("- node: {pkg: inhand, exec: recorder, env: [{name: X}]}", "each env entry needs name and value"),
    ],
)
def test_outside_the_subset_is_a_clear_error(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path / "bad.launch.yaml", f"launch:\n{entry}\n")
    with pytest.raises(LaunchError, match=message) as error:
        load_launch(path)
    assert str(path) in str(error.value)


def _launch(path: Path, tmp_path: Path, *arguments: str, domain: int | None = None) -> subprocess.Popen[str]:
    """`inhand launch` as a child process, on its default transport (rclpy: the ROS 2 wheels are installed)."""
    domain = random.randint(30, 230) if domain is None else domain
    return subprocess.Popen(
        [sys.executable, "-m", "ros_nodes.launch", str(path), *arguments, "--log-dir", str(tmp_path / "log")],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), ROS_DOMAIN_ID=str(domain), MUJOCO_GL="egl"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


TWO_NODES = """
launch:
- arg: {name: bag}
- arg: {name: goal_mode, default: xyz}
- node: {pkg: inhand, exec: recorder, param: [{name: bag, value: $(var bag)}, {name: images, value: false}]}
- node: {pkg: inhand, exec: goal_manager, param: [{name: goal_mode, value: $(var goal_mode)}]ON_EXIT}
"""


def two_nodes(path: Path, on_exit: bool) -> Path:
    """The recorder and a goal manager, whose exit ends the launch if on_exit."""
    return write(path, TWO_NODES.replace("ON_EXIT", ", on_exit: shutdown" if on_exit else ""))


def test_sigint_stops_every_node_cleanly_within_5_s(tmp_path: Path) -> None:
    path = two_nodes(tmp_path / "two.launch.yaml", on_exit=True)
    domain = random.randint(30, 230)
    listener = create_node("listener", backend="dds", domain_id=domain)
    statuses: list[msgs.String] = []
    listener.create_subscription(msgs.String, "/trial/status", statuses.append)
    # only the recorder subscribes hand/enable here: a match means its subscriptions exist and discovery has run
    probe = listener.create_publisher(msgs.Bool, "/hand/enable")
    runner = _launch(path, tmp_path, f"bag:={tmp_path / 'bag'}", domain=domain)
    try:
        # both nodes are up once the goal manager's status arrives and the recorder is subscribed
        assert listener.spin_until(lambda: bool(statuses) and probe.get_subscription_count() == 1, 60.0)
        seen = len(statuses)
        assert listener.spin_until(lambda: len(statuses) >= seen + 2, 30.0)  # statuses the recorder can have had
        assert runner.poll() is None
        started = time.monotonic()
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=10.0)
        elapsed = time.monotonic() - started
    finally:
        listener.shutdown()
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, output
    assert elapsed < 5.0, output
    assert "still running" not in output  # nobody needed SIGTERM
    assert "exited with code" not in output, output  # every node closed cleanly
    assert (tmp_path / "bag" / "metadata.yaml").exists()  # the recorder closed its bag
    with BagReader(tmp_path / "bag") as reader:
        assert "/trial/status" in reader.topics


def test_a_node_that_dies_with_on_exit_shutdown_stops_the_rest_with_its_exit_code(tmp_path: Path) -> None:
    path = two_nodes(tmp_path / "two.launch.yaml", on_exit=True)
    runner = _launch(path, tmp_path, f"bag:={tmp_path / 'bag'}", "goal_mode:=sideways")
    try:
        output, _ = runner.communicate(timeout=40.0)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 2, output
    assert "process goal_manager" in output and "exited with code 2; stopping the others (on_exit: shutdown)" in output
    log = (tmp_path / "log" / "goal_manager.log").read_text()
    assert 'value \'sideways\' not allowed; choose one of "", xyz, z' in log
    # the reason reaches the console too, not only the node's log file
    assert "[launch] last lines of goal_manager" in output
    assert "[goal_manager] goal_manager: " in output and "value 'sideways' not allowed" in output
    # the recorder was stopped too: before it opened its bag, or after, with the bag closed properly
    assert not (tmp_path / "bag").exists() or (tmp_path / "bag" / "metadata.yaml").exists()


def _wait_for(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_node_that_dies_without_on_exit_leaves_the_others_running_and_fails_the_launch(tmp_path: Path) -> None:
    path = two_nodes(tmp_path / "two.launch.yaml", on_exit=False)
    runner = _launch(path, tmp_path, f"bag:={tmp_path / 'bag'}", "goal_mode:=sideways")
    try:
        goal_manager_log = tmp_path / "log" / "goal_manager.log"
        assert _wait_for(lambda: goal_manager_log.exists() and "not allowed" in goal_manager_log.read_text(), 40.0)
        assert _wait_for(lambda: (tmp_path / "bag").exists(), 30.0)  # the recorder is up and recording
        time.sleep(1.0)
        assert runner.poll() is None  # the launch goes on without the goal manager
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=15.0)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "process goal_manager" in output and "the others keep running (no on_exit: shutdown)" in output
    assert runner.returncode == 2, output  # a node failed, so the launch did
    assert (tmp_path / "bag" / "metadata.yaml").exists()  # the recorder ran on and closed its bag on Ctrl-C


def test_a_node_that_fails_while_shutting_down_fails_the_launch(tmp_path: Path) -> None:
    path = two_nodes(tmp_path / "two.launch.yaml", on_exit=True)
    bag = tmp_path / "bag"
    runner = _launch(path, tmp_path, f"bag:={bag}")
    try:
        assert _wait_for(lambda: (bag / "bag.mcap").exists(), 40.0)
        time.sleep(1.0)
        assert runner.poll() is None
        for item in bag.iterdir():  # the recorder's disk goes away under it: closing the bag fails
            item.unlink()
        bag.rmdir()
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=15.0)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "recorder exited with code 1 while shutting down" in output, output
    assert runner.returncode == 1, output


def test_transport_choices_are_checked_against_the_plan(tmp_path: Path) -> None:
    from ros_nodes.launch import LaunchRunner

    plan = load_launch(two_nodes(tmp_path / "two.launch.yaml", on_exit=False), {"bag": "b"})
    with pytest.raises(LaunchError, match=r"--transport-of policy=dds: no node 'policy' in the launch; "
                                          r"nodes: \['recorder', 'goal_manager'\]"):
        LaunchRunner(plan, tmp_path, node_transports={"policy": "dds"})
    with pytest.raises(LaunchError, match="transport 'zenoh' is not supported; supported: rclpy, dds"):
        LaunchRunner(plan, tmp_path, node_transports={"recorder": "zenoh"})
    runner = LaunchRunner(plan, tmp_path, transport="dds", node_transports={"recorder": "rclpy"})
    assert (runner.transport, runner.node_transports) == ("dds", {"recorder": "rclpy"})
    assert LaunchRunner(plan, tmp_path).transport == "rclpy"  # the default where rclpy imports


def test_negative_timeouts_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ros_nodes.launch import main

    for flag in ("--sigint-timeout", "--sigterm-timeout"):
        with pytest.raises(SystemExit) as exit_info:
            main(["sim.launch.yaml", flag, "-1"])
        assert exit_info.value.code == 2 and "seconds, >= 0" in capsys.readouterr().err


def test_launch_files_resolve_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from ros_nodes.launch import main

    monkeypatch.chdir(tmp_path)
    for name in ("sim_state.launch.yaml", "launch/sim_state.launch.yaml"):
        assert main([name, "--print"]) == 0
        assert "ros_nodes.hand_driver" in capsys.readouterr().out
