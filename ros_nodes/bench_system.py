"""`inhand bench system`: the sim system on DDS, measured from outside: sensor-to-command latency, missed deadlines,
and the DDS round trip of a 24-joint JointState (ros_nodes.bench_transport), printed as one JSON object.

The system is launch/sim_state.launch.yaml run by `inhand launch` (driver, goal manager, policy, recorder, each its
own process). A listener process-side node takes, per control step, the wall time its hand/joint_states arrive (the
driver publishes them with /clock, before rendering) and its three camera images arrive, and the wall time the
policy's hand/command for that step arrives (commands carry the stamp of the joint states, which equals the images'
stamp). Latency = command arrival - arrival of the joint states of the same stamp (the moment the driver published
the state the images show). A deadline is missed when a step's command arrives after the next step's joint states
(the driver applies commands at its next step); steps with no command at all (between trials, while the goal manager
resets the cube) are counted apart. Driver overruns count steps that came more than half a period late on the wall
clock; image delivery is image arrival - joint states arrival (rendering three cameras plus transport).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ros_nodes import bench_transport, msgs
from ros_nodes.domains import quiet_domain
from ros_nodes.transport import SENSOR_QOS, create_node
from sim.paths import data_path
from sim.scene import CAMERA_NAMES


def write_untrained_checkpoint(path: str | Path, dense_size: int = 256, lstm_size: int = 128,
                               goal_mode: str = "z", seed: int = 0) -> Path:
    """An inference checkpoint of a freshly initialized actor (train.yaml's widths by default): costs as a trained
    one of that size, acts at random."""
    import torch

    from sim import checkpoint
    from policies.config import EnvSection, ModelConfig, TrainConfig
    from policies.inference import inference_payload
    from policies.models import Actor, EnvSpec
    from sim.batch import OBSERVATION_SIZES

    config = TrainConfig(seed=seed, env=EnvSection(goal_mode=goal_mode),
                         model=ModelConfig(dense_size=dense_size, lstm_size=lstm_size))
    torch.manual_seed(seed)
    actor = Actor(EnvSpec(OBSERVATION_SIZES["policy"], OBSERVATION_SIZES["critic"], "discrete", 20, 11), config.model)
    return checkpoint.save(path, "inference", inference_payload(actor, config))


def resting_cube_position(seed: int = 0) -> np.ndarray:
    """Where the cube lies on the palm (3,) m, world frame, after a reset of the nominal (unrandomized) sim."""
    from sim.batch import ReorientBatch
    from sim.config import load_env_config

    batch = ReorientBatch(load_env_config().with_options(randomize=False), 1, seed=seed, autoreset=False)
    batch.reset(seed)
    return batch.qpos[0, batch.index.cube_qpos : batch.index.cube_qpos + 3].copy()


def write_untrained_pose_checkpoint(path: str | Path, input_size: int = 48, seed: int = 0,
                                    position_scale_m: float = 0.002) -> Path:
    """A pose-estimator checkpoint (as `inhand vision train` writes model.pt) of a small, freshly initialized
    network whose positions stay within a few position_scale_m of the cube resting on the palm, so the goal manager
    sees a cube in the hand and runs trials; its orientations are arbitrary."""
    import torch

    from vision.config import ModelConfig, VisionConfig
    from vision.inference import save_pose_estimator
    from vision.model import PoseNet

    config = ModelConfig(input_size=input_size, stem_channels=(8, 8), stage_channels=(8, 8, 16, 16), hidden_size=32)
    torch.manual_seed(seed)
    model = PoseNet(config)
    model.set_position_normalization(torch.as_tensor(resting_cube_position(seed)), torch.full((3,), position_scale_m))
    return save_pose_estimator(path, model.eval(), VisionConfig(model=config), step=0, validation={})


def _percentiles(values_ms: list[float]) -> dict[str, float | None]:
    array = np.asarray(values_ms, dtype=np.float64)
    return {name: round(float(np.percentile(array, q)), 3) if array.size else None
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))}


def launch_system(checkpoint: Path, bag: Path, log_dir: Path, domain_id: int, camera_size: int,
                  extra: list[str] | None = None,
                  launch_file: str = "launch/sim_state.launch.yaml", transport: str = "dds",
                  node_transports: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`inhand launch LAUNCH_FILE` (sim_state by default) as a child process on ROS domain `domain_id`, its nodes on
    `transport` except those named in node_transports."""
    root = Path(__file__).resolve().parent.parent
    environment = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
                       PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-m", "ros_nodes.launch", str(data_path(launch_file)),
         f"checkpoint:={checkpoint}", f"bag:={bag}", f"camera_size:={camera_size}", *(extra or []),
         "--log-dir", str(log_dir), "--transport", transport,
         *(f"--transport-of={name}={chosen}" for name, chosen in (node_transports or {}).items())],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop_system(process: subprocess.Popen[str], timeout_s: float = 15.0) -> tuple[int, str, float]:
    """SIGINT the launcher; return its exit code, its output and how long it took to stop."""
    started = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output, time.monotonic() - started


def measure_system(steps: int, camera_size: int, checkpoint: Path | None, record_images: bool, image_period_steps: int,
                   domain_id: int, startup_timeout_s: float = 60.0) -> dict[str, Any]:
    """Run the sim system until `steps` control steps with commands were seen; return latency and deadline figures."""
    with tempfile.TemporaryDirectory(prefix="inhand_bench_system_") as folder:
        work = Path(folder)
        if checkpoint is None:
            checkpoint = write_untrained_checkpoint(work / "policy.pt")
            checkpoint_note = "untrained, config/train.yaml widths (dense 256, LSTM 128)"
        else:
            checkpoint_note = str(checkpoint)
        listener = create_node("bench_system", backend="dds", domain_id=domain_id)
        state_at: dict[int, float] = {}
        images_at: dict[int, list[float]] = {}
        command_at: dict[int, float] = {}
        listener.create_subscription(msgs.JointState, "/hand/joint_states",
                                     lambda m: state_at.setdefault(m.header.stamp.to_ns(), time.perf_counter()))
        listener.create_subscription(msgs.JointState, "/hand/command",
                                     lambda m: command_at.setdefault(m.header.stamp.to_ns(), time.perf_counter()))
        for camera in CAMERA_NAMES:
            listener.create_subscription(
                msgs.Image, f"/cameras/{camera}/image_raw",
                lambda m: images_at.setdefault(m.header.stamp.to_ns(), []).append(time.perf_counter()), SENSOR_QOS)
        extra = [f"record_images:={str(record_images).lower()}", f"image_period_steps:={image_period_steps}"]
        process = launch_system(checkpoint, work / "bag", work / "log", domain_id, camera_size, extra)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not command_at:
                if process.poll() is not None or time.monotonic() > deadline:
                    code, output, _ = stop_system(process)
                    raise RuntimeError(f"the system sent no command within {startup_timeout_s} s (exit {code}):\n"
                                       f"{output[-3000:]}")
                listener.spin_once(0.1)
            first = min(command_at)
            period_ns = 80_000_000
            last_needed = first + (steps + 1) * period_ns
            while max(state_at) < last_needed:
                if process.poll() is not None:
                    raise RuntimeError(f"the system stopped early:\n{stop_system(process)[1][-3000:]}")
                listener.spin_once(0.1)
            listener.spin(timeout_s=0.5)
        finally:
            code, output, stop_s = stop_system(process)
            listener.shutdown()
    measured = [first + i * period_ns for i in range(steps)]
    state_latency, image_delivery, missed, without_command, overruns, lost_images = [], [], 0, 0, 0, 0
    for stamp in measured:
        arrived = command_at.get(stamp)
        next_state = state_at.get(stamp + period_ns)
        if arrived is None:
            without_command += 1
        elif next_state is None or arrived > next_state:
            missed += 1
        if arrived is not None and stamp in state_at:
            state_latency.append((arrived - state_at[stamp]) * 1e3)
        frames = images_at.get(stamp, [])
        if len(frames) == len(CAMERA_NAMES) and stamp in state_at:
            image_delivery.append((max(frames) - state_at[stamp]) * 1e3)
        if (stamp // period_ns) % image_period_steps == 0:
            lost_images += len(CAMERA_NAMES) - len(frames)
        if stamp in state_at and stamp + period_ns in state_at:
            overruns += (state_at[stamp + period_ns] - state_at[stamp]) > 1.5 * period_ns / 1e9
    return {
        "control_steps": steps,
        "camera_size": camera_size,
        "image_period_steps": image_period_steps,
        "recording_images": record_images,
        "checkpoint": checkpoint_note,
        "commands_received": sum(stamp in command_at for stamp in measured),
        "stamp_to_command_latency_ms": _percentiles(state_latency),
        "missed_deadlines": missed,
        "steps_without_command": without_command,
        "image_delivery_ms": _percentiles(image_delivery),
        "driver_overruns": int(overruns),
        "images_not_received": lost_images,
        "shutdown_s": round(stop_s, 2),
        "launcher_exit_code": code,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the system and the transport round trip, print one JSON object."""
    parser = argparse.ArgumentParser(prog="inhand bench system", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="measured control steps (default 1000, 80 s)")
    parser.add_argument("--camera-size", type=int, default=200, help="camera images are N x N (default 200)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="policy checkpoint (default: an untrained one of config/train.yaml's widths)")
    parser.add_argument("--no-record-images", action="store_true", help="the recorder leaves the camera topics out")
    parser.add_argument("--image-period-steps", type=int, default=1,
                        help="the driver publishes images every N control steps (default 1: 12.5 Hz)")
    parser.add_argument("--round-trips", type=int, default=1000, help="DDS round-trip pings at 100 Hz (default 1000)")
    parser.add_argument("--domain-id", type=int, default=None, help="DDS domain (default: one of 1..29 where nothing of ours is heard)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.round_trips < 1 or args.image_period_steps < 1 or not 16 <= args.camera_size <= 2048:
        parser.error("--steps, --round-trips and --image-period-steps must be >= 1, --camera-size in 16..2048")
    domain_id = quiet_domain() if args.domain_id is None else args.domain_id
    system = measure_system(args.steps, args.camera_size, args.checkpoint, not args.no_record_images,
                            args.image_period_steps, domain_id)
    transport = bench_transport.run(args.round_trips, 100.0, 24, domain_id)
    targets = {"latency_p99_ms": 40.0, "missed_deadlines": 0, "round_trip_p99_ms": 5.0}
    result = {
        "benchmark": "system",
        "system": system,
        "dds_round_trip": transport,
        "targets": targets,
        "meets_targets": {
            "latency_p99": (system["stamp_to_command_latency_ms"]["p99"] or float("inf")) <= targets["latency_p99_ms"],
            "missed_deadlines": system["missed_deadlines"] <= targets["missed_deadlines"],
            "round_trip_p99": (transport["round_trip_ms"]["p99"] or float("inf")) <= targets["round_trip_p99_ms"],
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
