"""`inhand replay BAG [--video OUT.mp4] [--resim OUT.png] [--publish]`: look at a recorded episode, sim or real.

--video   renders the recorded hand (hand/joint_states) and cube (object/pose_true, else object/pose) with MuJoCo.
--resim   re-simulates the recorded hand/command stream (through the driver's SafetyFilter, as the driver applied it)
          in the nominal MuJoCo model from the first recorded state, and plots simulated vs recorded joint
          trajectories with the per-joint RMS error (the sim-to-real gap); the RMS is printed as JSON.
--publish republishes every recorded topic (raw CDR) with its original timing on the dds backend.

Times: with /clock in the bag (sim), header stamps (sim time), and for unstamped messages the sim time of the last
clock tick received before them; without /clock (a real hand), the recorder's receive times.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros_nodes import msgs
from ros_nodes.bag import BagError, BagReader, repair_bag
from ros_nodes.hand_driver import DriverConfig, quaternion_array
from ros_nodes.joint_map import JointMap
from ros_nodes.recorder import BEST_EFFORT_TYPES
from sim.config_loading import load_config
from sim.errors import InhandError
from sim.output_paths import check_output_file
from sim.paths import data_path


@dataclass
class Recording:
    """What replay needs from a bag, on one time axis (seconds from the first joint state)."""

    joint_times: np.ndarray  # (T,)
    joint_positions: np.ndarray  # (T, 24) Shadow units, JointMap order
    pose_times: np.ndarray  # (P,)
    cube_positions: np.ndarray  # (P, 3)
    cube_quaternions: np.ndarray  # (P, 4) w, x, y, z
    goal_times: np.ndarray  # (G,)
    goals: np.ndarray  # (G, 4)
    commands: list[tuple[float, list[str], np.ndarray]]
    enables: list[tuple[float, bool]]


def _topic(reader: BagReader, suffix: str, required: bool) -> str | None:
    """The bag's topic named `suffix` (in any namespace); None or a clear error when absent."""
    matches = [topic for topic in reader.topics if topic == f"/{suffix}" or topic.endswith(f"/{suffix}")]
    if len(matches) > 1:
        raise BagError(f"bag {reader.path} has several {suffix} topics {matches}; replay takes one namespace")
    if not matches and required:
        raise BagError(f"bag {reader.path} has no {suffix} topic, which replay needs; it has {sorted(reader.topics)}")
    return matches[0] if matches else None


def read_recording(path: str | Path, joint_map: JointMap) -> Recording:
    """Joint states, cube poses, goals, commands and enables of a bag."""
    with BagReader(path) as reader:
        joints_topic = _topic(reader, "hand/joint_states", required=True)
        pose_topic = _topic(reader, "object/pose_true", required=False) or _topic(reader, "object/pose", required=False)
        optional = {
            "goal": _topic(reader, "goal/orientation", required=False),
            "command": _topic(reader, "hand/command", required=False),
            "enable": _topic(reader, "hand/enable", required=False),
            "clock": "/clock" if "/clock" in reader.topics else None,
        }
        wanted = [topic for topic in (joints_topic, pose_topic, *optional.values()) if topic]
        joint_times, joint_rows, pose_times, positions, quaternions = [], [], [], [], []
        goal_times, goals, commands, enables, clock = [], [], [], [], []
        index = {name: i for i, name in enumerate(joint_map.shadow_joint_names)}
        last = np.zeros(len(index))
        for record in reader.messages(wanted):
            t, message = record.timestamp_ns, record.message
            if record.topic == joints_topic:
                if len(message.position) != len(message.name):
                    continue
                for name, value in zip(message.name, message.position):
                    if name in index:
                        last[index[name]] = value
                joint_times.append((t, message.header.stamp.to_ns()))
                joint_rows.append(last.copy())
            elif record.topic == pose_topic:
                pose = message.pose
                pose_times.append((t, message.header.stamp.to_ns()))
                positions.append([pose.position.x, pose.position.y, pose.position.z])
                quaternions.append(quaternion_array(pose.orientation))
            elif record.topic == optional["goal"]:
                goal_times.append((t, message.header.stamp.to_ns()))
                goals.append(quaternion_array(message.quaternion))
            elif record.topic == optional["command"]:
                commands.append((t, list(message.name), np.asarray(message.position, dtype=np.float64)))
            elif record.topic == optional["enable"]:
                enables.append((t, bool(message.data)))
            elif record.topic == "/clock":
                clock.append((t, message.clock.to_ns()))
    if not joint_times:
        raise BagError(f"bag {path}: {joints_topic} holds no joint positions")
    clock_ticks = np.array(clock, dtype=np.float64).reshape(-1, 2)
    to_seconds = _time_axis(clock_ticks, joint_times[0])
    return Recording(
        joint_times=to_seconds(joint_times),
        joint_positions=np.array(joint_rows),
        pose_times=to_seconds(pose_times),
        cube_positions=np.array(positions).reshape(-1, 3),
        cube_quaternions=np.array(quaternions).reshape(-1, 4),
        goal_times=to_seconds(goal_times),
        goals=np.array(goals).reshape(-1, 4),
        commands=[(float(to_seconds([(t, 0)])[0]), names, values) for t, names, values in commands],
        enables=[(float(to_seconds([(t, 0)])[0]), flag) for t, flag in enables],
    )


def _time_axis(clock: np.ndarray, first: tuple[int, int]) -> Callable[[list[tuple[int, int]]], np.ndarray]:
    """(receive time, header stamp) pairs (ns) -> seconds since the first joint state.

    With /clock in the bag (sim), a stamped message counts at its stamp (sim time) and an unstamped one at the sim
    time of the last clock tick received before it: the control period the driver applied it in. Without /clock,
    receive times are used as they are."""
    if len(clock) == 0:
        return lambda pairs: (np.array([t for t, _ in pairs], dtype=np.float64).reshape(-1) - first[0]) / 1e9

    def to_sim(pairs: list[tuple[int, int]]) -> np.ndarray:
        received = np.array([t for t, _ in pairs], dtype=np.float64).reshape(-1)
        stamps = np.array([stamp for _, stamp in pairs], dtype=np.float64).reshape(-1)
        ticks = np.searchsorted(clock[:, 0], received, side="right") - 1
        return np.where(stamps > 0, stamps, clock[np.maximum(ticks, 0), 1])

    start = float(to_sim([first])[0])
    return lambda pairs: (to_sim(pairs) - start) / 1e9


def _sample_times(duration_s: float, period_s: float) -> np.ndarray:
    """0, period, 2 period, ... up to and including duration_s (to within rounding)."""
    return np.arange(int(np.floor(duration_s / period_s + 1e-6)) + 1) * period_s


def _latest(times: np.ndarray, t: float) -> int:
    """Index of the last sample at or before t (the first sample before any)."""
    return max(0, int(np.searchsorted(times, t, side="right")) - 1)


class _Scene:
    """The nominal model with the recording's state written into it."""

    def __init__(self) -> None:
        import mujoco

        from sim.scene import index_scene, load_model

        self.mujoco = mujoco
        self.model = load_model()
        self.data = mujoco.MjData(self.model)
        self.index = index_scene(self.model)
        self.joint_map = JointMap.from_model(self.model, self.index.hand_joint_names)

    def set_state(self, recording: Recording, t: float) -> None:
        """Hand, cube and goal as recorded at time t."""
        data, index = self.data, self.index
        row = _latest(recording.joint_times, t)
        data.qpos[index.hand_qpos] = self.joint_map.joints_to_sim(recording.joint_positions[row])
        if len(recording.pose_times):
            pose = _latest(recording.pose_times, t)
            data.qpos[index.cube_qpos : index.cube_qpos + 3] = recording.cube_positions[pose]
            data.qpos[index.cube_qpos + 3 : index.cube_qpos + 7] = recording.cube_quaternions[pose]
        if len(recording.goal_times):
            data.mocap_quat[index.goal_mocap] = recording.goals[_latest(recording.goal_times, t)]
        data.qvel[:] = 0.0
        self.mujoco.mj_forward(self.model, data)


def render_video(recording: Recording, out: Path, camera: str, size: int, fps: float) -> Path:
    """MP4 of the recorded states seen from `camera`, one frame per 1/fps seconds of recording."""
    from sim.media import write_video

    scene = _Scene()
    renderer = scene.mujoco.Renderer(scene.model, size, size)
    try:
        frames = []
        for t in _sample_times(recording.joint_times[-1], 1.0 / fps):
            scene.set_state(recording, float(t))
            renderer.update_scene(scene.data, camera=camera)
            frames.append(renderer.render().copy())
    finally:
        renderer.close()
    return write_video(out, frames, fps)


def resimulate(recording: Recording, driver: DriverConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (K,), simulated (K, 24), recorded (K, 24)) joint positions at each control period."""
    from ros_nodes.safety import SafetyFilter

    scene = _Scene()
    mujoco, model, data, joint_map = scene.mujoco, scene.model, scene.data, scene.joint_map
    scene.set_state(recording, 0.0)
    substeps = max(1, int(round(driver.control_period_s / model.opt.timestep)))
    model.opt.timestep = driver.control_period_s / substeps
    safety = SafetyFilter(
        joint_map.command_names, joint_map.command_limits[:, 0], joint_map.command_limits[:, 1],
        driver.max_rate_rad_s, driver.control_period_s, driver.watchdog_periods, enabled=driver.start_enabled,
    )
    events = sorted([(t, 0, names, values) for t, names, values in recording.commands]
                    + [(t, 1, [], flag) for t, flag in recording.enables], key=lambda event: (event[0], event[1]))
    times = _sample_times(recording.joint_times[-1], driver.control_period_s)
    simulated = np.zeros((len(times), len(joint_map.shadow_joint_names)))
    next_event = 0
    for k, t in enumerate(times):
        while next_event < len(events) and events[next_event][0] <= t:
            _, kind, names, value = events[next_event]
            next_event += 1
            if kind == 1:
                safety.set_enabled(value)
                continue
            try:
                index = joint_map.command_index(names)
            except KeyError:
                continue  # the driver rejected this message too
            targets, mask = np.zeros(len(joint_map.command_names)), np.zeros(len(joint_map.command_names), dtype=bool)
            targets[index], mask[index] = value, True
            safety.command(targets, float(t), mask)
        simulated[k] = joint_map.joints_to_shadow(data.qpos[scene.index.hand_qpos])
        current = joint_map.commands_from_joints(simulated[k])
        data.ctrl[:] = np.clip(joint_map.commands_to_ctrl(safety.update(current, float(t))),
                               model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1])
        mujoco.mj_step(model, data, substeps)
    recorded = np.stack([np.interp(times, recording.joint_times, recording.joint_positions[:, j])
                         for j in range(simulated.shape[1])], axis=1)
    return times, simulated, recorded


def plot_resim(times: np.ndarray, simulated: np.ndarray, recorded: np.ndarray, names: tuple[str, ...],
               out: Path) -> dict[str, float]:
    """PNG of each joint's simulated vs recorded trajectory; returns the per-joint RMS error (rad)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.media import write_image

    rms = np.sqrt(np.mean((simulated - recorded) ** 2, axis=0))
    figure, axes = plt.subplots(4, 6, figsize=(18, 10), sharex=True)
    for j, axis in enumerate(axes.flat):
        axis.plot(times, recorded[:, j], label="recorded")
        axis.plot(times, simulated[:, j], "--", label="re-simulated")
        axis.set_title(f"{names[j]}  RMS {rms[j]:.3f} rad", fontsize=9)
        axis.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    figure.supxlabel("time (s)")
    figure.supylabel("joint position (rad)")
    figure.suptitle(f"re-simulated vs recorded joints, mean RMS {rms.mean():.3f} rad")
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    write_image(out, image)
    return {name: round(float(value), 5) for name, value in zip(names, rms)}


def publish(path: Path, rate: float, topics: list[str] | None, delay_s: float) -> int:
    """Republish the bag's topics with their original timing (scaled by 1/rate); returns the count sent."""
    from ros_nodes.transport import QosProfile, create_node

    with BagReader(path) as reader:
        chosen = topics or sorted(reader.topics)
        missing = sorted(set(chosen) - set(reader.topics))
        if missing:
            raise BagError(f"bag {path} has no topic {missing}; it has {sorted(reader.topics)}")
        unknown = sorted(f"{t} ({reader.topics[t]})" for t in chosen if reader.topics[t] not in msgs.REGISTRY)
        if unknown:
            raise BagError(
                f"bag {path}: cannot publish {', '.join(unknown)}: ros_nodes.msgs has no such type; "
                "pick the others with --topics"
            )
        node = create_node("replay", backend="dds")
        try:
            publishers = {
                topic: node.create_publisher(
                    msgs.message_class(reader.topics[topic]), topic,
                    QosProfile(depth=10, reliable=reader.topics[topic] not in BEST_EFFORT_TYPES),
                )
                for topic in chosen
            }
            node.spin(timeout_s=delay_s)  # discovery
            sent, start_wall, first = 0, time.monotonic(), None
            for record in reader.messages(chosen, raw=True):
                first = record.timestamp_ns if first is None else first
                wait = start_wall + (record.timestamp_ns - first) / 1e9 / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                publishers[record.topic].publish(record.message)
                sent += 1
            node.spin(timeout_s=0.5)  # let reliable retransmissions finish
        finally:
            node.shutdown()
    return sent


def main(argv: list[str] | None = None) -> int:
    """`inhand replay BAG --video OUT.mp4 | --resim OUT.png | --publish`."""
    parser = argparse.ArgumentParser(prog="inhand replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="a rosbag2 folder (metadata.yaml + .mcap)")
    parser.add_argument("--video", type=Path, help="write an MP4 of the recorded hand and cube")
    parser.add_argument("--camera", default="front", help="camera of the video: left, front or right (default front)")
    parser.add_argument("--size", type=int, default=320, help="video frame size in pixels (default 320)")
    parser.add_argument("--fps", type=float, default=12.5, help="video frames per second of recording (default 12.5)")
    parser.add_argument("--resim", type=Path, help="re-simulate the recorded commands; write this PNG, print RMS JSON")
    parser.add_argument("--driver-config", type=Path, default=None,
                        help="the driver's config whose safety limits the commands went through "
                             "(default config/ros_driver.yaml)")
    parser.add_argument("--publish", action="store_true", help="republish the recorded topics on DDS")
    parser.add_argument("--rate", type=float, default=1.0, help="--publish speed factor (default 1)")
    parser.add_argument("--topics", nargs="+", default=None, help="--publish only these topics")
    parser.add_argument("--delay", type=float, default=1.0, help="--publish: seconds for discovery first (default 1)")
    parser.add_argument("--repair", action="store_true",
                        help="first rebuild a bag whose recorder was killed (keeps every complete message); the "
                             "original folder is kept beside it as BAG.orig")
    parser.add_argument("--force", action="store_true",
                        help="write --video/--resim even over an existing file of another kind or inside a bag "
                             "folder (never over an input)")
    args = parser.parse_args(argv)
    if not (args.video or args.resim or args.publish or args.repair):
        parser.error("choose at least one of --video OUT.mp4, --resim OUT.png, --publish, --repair")
    if args.size < 16 or not (args.fps > 0 and args.rate > 0 and args.delay >= 0):  # NaN too
        parser.error("--size must be >= 16, --fps and --rate > 0, --delay >= 0")
    try:
        inputs = [args.bag, args.driver_config]
        if args.video:
            check_output_file(args.video, "MP4 video", inputs, args.force, "--video")
        if args.resim:
            check_output_file(args.resim, "PNG image", inputs, args.force, "--resim")
        if args.repair:
            report = repair_bag(args.bag)
            original = None if report.original is None else str(report.original)
            print(json.dumps({"bag": str(args.bag), "repaired": report.repaired, "messages": report.message_count,
                              "dropped_bytes": report.dropped_bytes, "original": original, "note": report.note}),
                  file=sys.stderr)
        if args.video or args.resim:
            from sim.scene import CAMERA_NAMES, index_scene, load_model

            if args.camera not in CAMERA_NAMES:
                parser.error(f"--camera must be one of {', '.join(CAMERA_NAMES)}")
            model = load_model()
            recording = read_recording(args.bag, JointMap.from_model(model, index_scene(model).hand_joint_names))
            if args.video:
                render_video(recording, args.video, args.camera, args.size, args.fps)
                print(f"wrote {args.video}", file=sys.stderr)
            if args.resim:
                driver = load_config(DriverConfig, args.driver_config or data_path("config/ros_driver.yaml"))
                times, simulated, recorded = resimulate(recording, driver)
                names = JointMap.from_model(model, index_scene(model).hand_joint_names).shadow_joint_names
                rms = plot_resim(times, simulated, recorded, names, args.resim)
                print(json.dumps({"bag": str(args.bag), "steps": len(times), "commands": len(recording.commands),
                                  "rms_rad": rms, "mean_rms_rad": round(float(np.mean(list(rms.values()))), 5),
                                  "plot": str(args.resim)}, indent=2))
        if args.publish:
            sent = publish(args.bag, args.rate, args.topics, args.delay)
            print(f"published {sent} messages from {args.bag}", file=sys.stderr)
    except InhandError as error:
        print(f"inhand replay: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
