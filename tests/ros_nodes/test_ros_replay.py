"""inhand replay on a bag recorded here (sim driver + recorder on inproc): video, re-simulation, publishing, and
clear messages for truncated bags and unknown topics."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.bag import BagWriter
from ros_nodes.hand_driver import DriverConfig, HandDriver
from ros_nodes.recorder import Recorder, RecorderConfig
from ros_nodes.replay import main, publish
from ros_nodes.transport import create_node

STEPS = 30


def _drain(node) -> None:  # noqa: ANN001
    while node.spin_once(0.0):
        pass


@pytest.fixture(scope="module")
def recorded_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 control periods of the (unrandomized) sim driver following a sine on two joints, recorded."""
    path = tmp_path_factory.mktemp("replay") / "bag"
    domain = 4300
    driver_node = create_node("hand_driver", backend="inproc", domain_id=domain)
    driver = HandDriver(driver_node, DriverConfig(randomize=False, publish_images=False), start_timer=False)
    recorder_node = create_node("recorder", backend="inproc", domain_id=domain)
    recorder = Recorder(recorder_node, RecorderConfig(bag=str(path), images=False))
    policy = create_node("policy", backend="inproc", domain_id=domain)
    command = policy.create_publisher(msgs.JointState, "hand/command")
    try:
        driver.step()
        _drain(recorder_node)
        for step in range(STEPS):
            phase = 2 * np.pi * step / STEPS
            command.publish(msgs.JointState(name=["rh_FFJ3", "rh_WRJ1"],
                                            position=np.array([0.8 + 0.6 * np.sin(phase), 0.3 * np.sin(phase)])))
            _drain(recorder_node)  # the command lands after the clock tick of the period that applies it
            _drain(driver_node)
            driver.step()
            _drain(recorder_node)
    finally:
        recorder.close()
        driver.close()
        for node in (driver_node, recorder_node, policy):
            node.shutdown()
    return path


def test_video_and_resim(recorded_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video, plot = tmp_path / "replay.mp4", tmp_path / "resim.png"
    assert main([str(recorded_bag), "--video", str(video), "--size", "48", "--resim", str(plot)]) == 0
    frames = iio.imread(video)
    assert frames.shape == (STEPS + 1, 48, 48, 3)  # one frame per 80 ms of the 2.4 s recording, both ends
    assert frames[0].std() > 5
    report = json.loads(capsys.readouterr().out)
    assert report["commands"] == STEPS and report["steps"] == STEPS + 1
    assert len(report["rms_rad"]) == 24
    # the same nominal physics and safety filter as the recording: the trajectories agree closely
    assert report["rms_rad"]["rh_FFJ3"] < 0.02 and report["rms_rad"]["rh_WRJ1"] < 0.02
    assert report["mean_rms_rad"] < 0.01
    image = iio.imread(plot)
    assert image.shape[2] in (3, 4) and image.shape[0] > 500


@pytest.fixture(scope="module")
def bag_with_reset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sim driver holding rh_FFJ3 at 0.3 rad, a reset after 10 periods, then a command computed from the old
    episode's last state asking 1.4 rad (the driver drops it), then 0.3 again; recorded."""
    path = tmp_path_factory.mktemp("replay_reset") / "bag"
    domain = 4301
    driver_node = create_node("hand_driver", backend="inproc", domain_id=domain)
    driver = HandDriver(driver_node, DriverConfig(randomize=False, publish_images=False), start_timer=False)
    recorder_node = create_node("recorder", backend="inproc", domain_id=domain)
    recorder = Recorder(recorder_node, RecorderConfig(bag=str(path), images=False))
    peer = create_node("policy", backend="inproc", domain_id=domain)
    command = peer.create_publisher(msgs.JointState, "hand/command")
    reset = peer.create_publisher(msgs.Bool, "hand/reset")

    def send(target: float, stamp_ns: int) -> None:
        command.publish(msgs.JointState(header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns)), name=["rh_FFJ3"],
                                        position=np.array([target])))

    try:
        driver.step()
        _drain(recorder_node)
        for step in range(24):
            if step == 10:
                reset.publish(msgs.Bool(data=True))
            elif step == 11:
                send(1.4, driver.intake.reset_at_ns)  # from the state the reset replaced
            else:
                send(0.3, driver.sim.time_ns)
            _drain(recorder_node)
            _drain(driver_node)
            driver.step()
            _drain(recorder_node)
    finally:
        recorder.close()
        driver.close()
        for node in (driver_node, recorder_node, peer):
            node.shutdown()
    assert driver.intake.dropped_before_reset == 1
    return path


def test_resim_follows_the_drivers_reset_rules(bag_with_reset: Path) -> None:
    from ros_nodes.joint_map import default_joint_map
    from ros_nodes.replay import read_recording, resimulate

    recording = read_recording(bag_with_reset, default_joint_map())
    assert len(recording.resets) == 1 and len(recording.commands) == 23
    times, simulated, recorded = resimulate(recording, DriverConfig())
    # the dropped command would have pulled rh_FFJ3 towards 1.4 rad; the reset restarts from the recorded state
    assert np.sqrt(np.mean((simulated - recorded) ** 2, axis=0)).max() < 0.02
    assert len(times) == 25


def test_publish_replays_with_original_timing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = tmp_path / "timed"
    with BagWriter(bag) as writer:
        for index in range(10):  # 10 states 80 ms apart, as recorded
            writer.write("/hand/joint_states", "sensor_msgs/msg/JointState",
                         msgs.JointState(name=["rh_FFJ1"], position=np.array([float(index)])), 5_000_000_000 + index * 80_000_000)
        writer.write("/trial/status", "std_msgs/msg/String", msgs.String(data="{}"), 5_000_000_000)
    monkeypatch.setenv("ROS_DOMAIN_ID", "217")
    listener = create_node("listener", backend="dds")
    arrivals: list[tuple[float, float]] = []
    listener.create_subscription(
        msgs.JointState, "/hand/joint_states", lambda m: arrivals.append((time.monotonic(), m.position[0])), 100
    )
    thread = threading.Thread(target=listener.spin, kwargs={"timeout_s": 20.0}, daemon=True)
    thread.start()
    try:
        sent = publish(bag, rate=1.0, topics=["/hand/joint_states"], delay_s=1.5)
        deadline = time.monotonic() + 3.0
        while len(arrivals) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.shutdown()
        thread.join(5.0)
    assert sent == 10 and [value for _, value in arrivals] == list(range(10))
    assert 0.65 < arrivals[-1][0] - arrivals[0][0] < 1.1  # 9 gaps of 80 ms


def test_truncated_and_unsuitable_bags_get_clear_messages(
    recorded_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(recorded_bag, killed)
    (killed / "metadata.yaml").unlink()
    mcap = next(killed.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    assert main([str(killed), "--video", str(tmp_path / "x.mp4")]) == 2
    assert f"inhand replay {killed} --repair" in capsys.readouterr().err
    # a recorder killed between flushes leaves its chunks but no metadata.yaml: --repair, then the replay runs
    unclosed = tmp_path / "unclosed"
    shutil.copytree(recorded_bag, unclosed)
    (unclosed / "metadata.yaml").unlink()
    assert main([str(unclosed), "--repair", "--video", str(tmp_path / "killed.mp4")]) == 0
    repaired = json.loads(capsys.readouterr().err.splitlines()[0])
    assert repaired["repaired"] and repaired["messages"] > 0
    assert (tmp_path / "killed.mp4").stat().st_size > 1000

    other = tmp_path / "other"
    with BagWriter(other) as writer:
        writer.write("/trial/status", "std_msgs/msg/String", msgs.String(data="{}"), 1)
        writer.write("/odom", "nav_msgs/msg/Odometry", b"\x00\x01\x00\x00" + bytes(700), 2)
    assert main([str(other), "--resim", str(tmp_path / "x.png")]) == 2
    assert "has no hand/joint_states topic, which replay needs; it has ['/odom', '/trial/status']" in capsys.readouterr().err
    assert main([str(other), "--publish"]) == 2
    assert "cannot publish /odom (nav_msgs/msg/Odometry)" in capsys.readouterr().err
