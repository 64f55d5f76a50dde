"""`inhand replay BAG [--video OUT.mp4] [--resim OUT.png] [--publish]`: look at a recorded episode, sim or real.

--video   renders the recorded hand (hand/joint_states) and cube (object/pose_true, else object/pose) with MuJoCo.
--resim   re-simulates the recorded hand/command, hand/enable and hand/reset stream through the driver's own
          CommandIntake and safety filter and the env's command path (sim.actuation), in the nominal MuJoCo model
          from the first recorded state (and from the recorded state after each reset), and plots simulated vs
          recorded joint trajectories with the per-joint RMS error (the sim-to-real gap); the RMS is printed as
          JSON. Clean by default; --unmodeled-effects adds the env config's action noise, delay, backlash, pushes
          and timing jitter, as the sim driver applies them.
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
from ros_nodes.hand_driver import DriverConfig, quaternion_array, safety_filter
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
    commands: list[tuple[float, list[str], np.ndarray, int]]  # time, names, positions, header stamp (ns)
    enables: list[tuple[float, bool]]
    resets: list[float]  # times of hand/reset requests
    origin_ns: int  # the driver's clock at time 0: sim time with /clock, else the recorder's receive time


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
            "reset": _topic(reader, "hand/reset", required=False),
            "clock": "/clock" if "/clock" in reader.topics else None,
        }
        wanted = [topic for topic in (joints_topic, pose_topic, *optional.values()) if topic]
        joint_times, joint_rows, pose_times, positions, quaternions = [], [], [], [], []
        goal_times, goals, commands, enables, resets, clock = [], [], [], [], [], []
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
                commands.append((t, list(message.name), np.asarray(message.position, dtype=np.float64),
                                 message.header.stamp.to_ns()))
            elif record.topic == optional["enable"]:
                enables.append((t, bool(message.data)))
            elif record.topic == optional["reset"] and message.data:
                resets.append(t)
            elif record.topic == "/clock":
                clock.append((t, message.clock.to_ns()))
    if not joint_times:
        raise BagError(f"bag {path}: {joints_topic} holds no joint positions")
    clock_ticks = np.array(clock, dtype=np.float64).reshape(-1, 2)
    to_seconds = _time_axis(clock_ticks, joint_times[0])
    received, stamp = joint_times[0]
    origin_ns = stamp if len(clock_ticks) and stamp > 0 else received
    return Recording(
        joint_times=to_seconds(joint_times),
        joint_positions=np.array(joint_rows),
        pose_times=to_seconds(pose_times),
        cube_positions=np.array(positions).reshape(-1, 3),
        cube_quaternions=np.array(quaternions).reshape(-1, 4),
        goal_times=to_seconds(goal_times),
        goals=np.array(goals).reshape(-1, 4),
        commands=[(float(to_seconds([(t, stamp)])[0]), names, values, stamp) for t, names, values, stamp in commands],
        enables=[(float(to_seconds([(t, 0)])[0]), flag) for t, flag in enables],
        resets=[float(to_seconds([(t, 0)])[0]) for t in resets],
        origin_ns=int(origin_ns),
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


def resimulate(recording: Recording, driver: DriverConfig, unmodeled_effects: bool = False,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (K,), simulated (K, 24), recorded (K, 24)) joint positions at each control period.

    The recorded messages go through the driver's CommandIntake at their times, one control period at a time, and
    its targets through ReorientBatch.step_commands on the nominal physics of driver.env_config (unmodeled effects
    as that config says when asked for, drawn from `seed`). A reset puts the hand and cube where the recording
    shows them next: the driver's new episode started from a random cube the recording holds, not its draws; the
    hand then holds the reset pose's targets, as the driver's does.
    """
    from dataclasses import replace

    from ros_nodes.command_intake import CommandIntake
    from sim.batch import ReorientBatch
    from sim.config import UNMODELED_EFFECTS, load_env_config

    env_config = load_env_config(driver.env_config)
    keep = UNMODELED_EFFECTS if unmodeled_effects else ()
    off = [name for name in ("physics", *UNMODELED_EFFECTS, "observation_noise", "marker_freeze") if name not in keep]
    env_config = replace(env_config, randomization=env_config.randomization.disabled(*off))
    batch = ReorientBatch(env_config, 1, seed=seed, autoreset=False)
    batch.reset(seed)
    reset_targets = batch.actuation.commands[0].copy()  # what the driver holds after a reset, until commanded
    index = batch.index
    joint_map = JointMap.from_model(batch.models[0], index.hand_joint_names)
    intake = CommandIntake(joint_map, safety_filter(joint_map, replace(driver, backend="sim"), env_config))
    period = batch.control_dt

    def place(t: float) -> None:
        row = _latest(recording.joint_times, t)
        positions = recording.joint_positions[row]
        cube = np.zeros(7)
        cube[3] = 1.0
        if len(recording.pose_times):
            pose = _latest(recording.pose_times, t)
            cube = np.concatenate((recording.cube_positions[pose], recording.cube_quaternions[pose]))
        batch.place(0, joint_map.joints_to_sim(positions), cube, reset_targets)

    events = sorted([(t, 0, "command", (names, values, stamp)) for t, names, values, stamp in recording.commands]
                    + [(t, 1, "enable", flag) for t, flag in recording.enables]
                    + [(t, 2, "reset", None) for t in recording.resets], key=lambda event: (event[0], event[1]))
    times = _sample_times(recording.joint_times[-1], period)
    simulated = np.zeros((len(times), len(joint_map.shadow_joint_names)))
    place(0.0)
    next_event = 0
    for k, t in enumerate(times):
        simulated[k] = joint_map.joints_to_shadow(batch.qpos[0, index.hand_qpos])
        while next_event < len(events) and events[next_event][0] <= t + 1e-9:
            _, _, kind, value = events[next_event]
            next_event += 1
            if kind == "command":
                names, positions, stamp = value
                intake.command(names, positions, stamp, float(t))
            elif kind == "enable":
                intake.enable(value)
            else:
                intake.request_reset()
        if intake.begin_period(recording.origin_ns + int(round(t * 1e9))):
            place(float(t) + period)  # the state the driver published after its reset and first period
            continue
        held = joint_map.ctrl_to_commands(batch.actuation.commands[0])
        batch.step_commands(joint_map.commands_to_ctrl(intake.targets(held, float(t)))[None])
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
    parser.add_argument("--unmodeled-effects", action="store_true",
                        help="--resim with the driver env config's action noise, delay, backlash, pushes and timing "
                             "jitter, as the sim driver applies them (default: a clean re-simulation)")
    parser.add_argument("--seed", type=int, default=0, help="--resim: the draws of --unmodeled-effects (default 0)")
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
                times, simulated, recorded = resimulate(recording, driver, args.unmodeled_effects, args.seed)
                names = JointMap.from_model(model, index_scene(model).hand_joint_names).shadow_joint_names
                rms = plot_resim(times, simulated, recorded, names, args.resim)
                print(json.dumps({"bag": str(args.bag), "steps": len(times), "commands": len(recording.commands),
                                  "resets": len(recording.resets), "unmodeled_effects": args.unmodeled_effects,
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
