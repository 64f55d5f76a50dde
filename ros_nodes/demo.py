"""`inhand demo` / `make demo`: the whole sim system of launch/sim.launch.yaml with the shipped checkpoints.

The sim driver, pose estimator, policy, goal manager and recorder run as processes on the dds backend (the launch
runner's Python API, as `inhand launch` does) for a few trials, then stop; the demo prints one JSON object (each
trial's consecutive successes and how the goal manager ended it beside what the sim's truth says, how often the
driver's safety filter changed a command, how the estimated pose compares with the sim's truth, the bag, the video)
and writes a replay MP4 of the bag and a PNG frame of it into the output folder. Launcher and node output goes to
stderr, so stdout holds the JSON only. `inhand demo --episode` is the single-episode video of sim.demo instead.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ros_nodes import msgs
from ros_nodes.bag import BagReader
from ros_nodes.domains import quiet_domain
from ros_nodes.hand_driver import quaternion_array
from ros_nodes.launch import LaunchRunner, load_launch, share_directory
from sim import rotations
from sim.output_paths import check_output_dir, check_output_file

LAUNCH_FILE = "launch/sim.launch.yaml"
POLICY_CHECKPOINT = "assets/checkpoints/policy_z.pt"
POSE_CHECKPOINT = "assets/checkpoints/pose_estimator.pt"


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `inhand demo` (system mode)."""
    parser = argparse.ArgumentParser(prog="inhand demo", description=__doc__.splitlines()[0])
    parser.add_argument("--episode", action="store_true",
                        help="instead: one scripted episode of the env as MP4 + PNG (see `inhand demo --episode -h`)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for demo.mp4, demo.png, bags, logs")
    parser.add_argument("--force", action="store_true",
                        help="write even over files of another kind or inside a bag or input folder")
    parser.add_argument("--trials", type=int, default=2, help="trials to run (default 2)")
    parser.add_argument("--max-successes", type=int, default=0,
                        help="a trial ends after this many consecutive successes (default 0: the policy's training "
                             "limit, 50 as Dactyl)")
    parser.add_argument("--trial-timeout", type=float, default=0.0,
                        help="a trial ends after this many sim seconds without a success (default 0: the policy's "
                             "training timeout, 8 s; Dactyl's physical trials: 80)")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="wall-clock limit of the run; a trial still running is reported as 'stopped' (default 120)")
    parser.add_argument("--camera-size", type=int, default=96, help="camera images are N x N (default 96)")
    parser.add_argument("--policy-checkpoint", type=Path, default=None,
                        help=f"policy (default: the shipped {POLICY_CHECKPOINT})")
    parser.add_argument("--pose-checkpoint", type=Path, default=None,
                        help=f"pose estimator (default: the shipped {POSE_CHECKPOINT})")
    parser.add_argument("--seed", type=int, default=0, help="sim randomization and goal sampling")
    parser.add_argument("--record-images", action="store_true", help="also record the camera images in the bag")
    parser.add_argument("--video-size", type=int, default=320, help="replay video width and height (default 320)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="DDS domain (default: $ROS_DOMAIN_ID, else one of 1..29 where nothing of ours is "
                             "heard, to keep to itself)")
    return parser


def pose_errors(estimated: dict[int, msgs.PoseStamped], true: dict[int, msgs.PoseStamped]) -> dict[str, Any]:
    """Median and p90 of the estimate's position (mm) and rotation (deg) error against the truth of the same stamp."""
    stamps = sorted(set(estimated) & set(true))
    if not stamps:
        return {"compared": 0}

    def arrays(messages: dict[int, msgs.PoseStamped]) -> tuple[np.ndarray, np.ndarray]:
        positions = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z]
                              for m in (messages[s] for s in stamps)])
        return positions, np.stack([quaternion_array(messages[s].pose.orientation) for s in stamps])

    (estimated_position, estimated_quaternion), (true_position, true_quaternion) = arrays(estimated), arrays(true)
    position_mm = 1000.0 * np.linalg.norm(estimated_position - true_position, axis=-1)
    rotation_deg = np.degrees(rotations.angle_between(estimated_quaternion, true_quaternion))
    return {
        "compared": len(stamps),
        "position_error_mm": {"median": round(float(np.median(position_mm)), 2),
                              "p90": round(float(np.percentile(position_mm, 90)), 2)},
        "rotation_error_deg": {"median": round(float(np.median(rotation_deg)), 2),
                               "p90": round(float(np.percentile(rotation_deg, 90)), 2)},
    }


def read_pose_errors(path: Path) -> dict[str, Any]:
    """The estimate-vs-truth errors recorded in a bag."""
    with BagReader(path) as bag:
        estimated = {r.message.header.stamp.to_ns(): r.message for r in bag.messages(["/object/pose"])}
        true = {r.message.header.stamp.to_ns(): r.message for r in bag.messages(["/object/pose_true"])}
    return pose_errors(estimated, true)


def write_replay(bag: Path, out: Path, size: int, fps: float = 12.5) -> tuple[Path, Path]:
    """demo.mp4: the bag replayed (ros_nodes.replay) from the front camera; demo.png: its middle frame."""
    import imageio.v3 as iio

    from ros_nodes.joint_map import JointMap
    from ros_nodes.replay import read_recording, render_video
    from sim.media import write_image
    from sim.scene import index_scene, load_model

    model = load_model()
    recording = read_recording(bag, JointMap.from_model(model, index_scene(model).hand_joint_names))
    video = render_video(recording, out / "demo.mp4", "front", size, fps)
    middle = int(recording.joint_times[-1] * fps / 2)
    frame = write_image(out / "demo.png", iio.imread(video, index=middle, plugin="FFMPEG"))
    return video, frame


def _say(text: str) -> None:
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def run_system(args: argparse.Namespace, policy: Path, pose: Path) -> dict[str, Any]:
    """Launch the sim system, follow its trials until they are done (or the time limit), stop it; the run's facts."""
    domain = args.domain_id
    if domain is None:
        domain = int(os.environ["ROS_DOMAIN_ID"]) if os.environ.get("ROS_DOMAIN_ID") else quiet_domain()
    os.environ["ROS_DOMAIN_ID"] = str(domain)  # the nodes inherit it
    stamp = time.strftime("%Y%m%d_%H%M%S")
    bag = args.out / "bags" / stamp
    plan = load_launch(share_directory() / LAUNCH_FILE, {
        "checkpoint": str(policy), "pose_checkpoint": str(pose), "bag": str(bag), "trials": str(args.trials),
        "max_consecutive_successes": str(args.max_successes), "trial_timeout_s": str(args.trial_timeout),
        "camera_size": str(args.camera_size), "seed": str(args.seed),
        "record_images": "true" if args.record_images else "false",
    })
    # on Cyclone DDS, as the figures in the README were measured; `inhand launch` defaults to rclpy
    runner = LaunchRunner(plan, args.out / "logs" / stamp, transport="dds")

    from ros_nodes.transport import create_node

    listener = create_node("demo", backend="dds", domain_id=domain)
    seen: list[tuple[int, str, int]] = []

    def on_status(message: msgs.String) -> None:
        status = json.loads(message.data)
        key = (int(status["trial"]), str(status["state"]), int(status["successes"]))
        if not seen or seen[-1] != key:
            seen.append(key)
            _say(f"trial {key[0]}: {key[1]}, {key[2]} consecutive successes")

    listener.create_subscription(msgs.String, "/trial/status", on_status)
    exit_codes: list[int] = []
    stopped_by = "trials_done"
    started = time.monotonic()
    interrupted = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        interrupted.set()
        runner.request_stop()

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.redirect_stdout(sys.stderr):
            runner.start()
            worker = threading.Thread(target=lambda: exit_codes.append(runner.run()), daemon=True)
            worker.start()
            while worker.is_alive():
                listener.spin_once(0.2)
                if time.monotonic() - started > args.max_seconds and stopped_by == "trials_done":
                    stopped_by = "time_limit"
                    _say(f"{args.max_seconds:.0f} s wall-clock limit reached: stopping")
                    runner.request_stop()
            worker.join()
    finally:
        listener.shutdown()
        runner.request_stop()
        with contextlib.redirect_stdout(sys.stderr):
            runner.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if interrupted.is_set():
        stopped_by = "interrupted"
    return {"exit_code": exit_codes[0] if exit_codes else 1, "stopped_by": stopped_by, "bag": bag,
            "wall_seconds": round(time.monotonic() - started, 1), "domain_id": domain}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; print its JSON; 2 when a checkpoint is missing, the failing node's code when one fails."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--episode" in argv:
        from sim.demo import main as episode_main

        return episode_main(argv)
    args = build_parser().parse_args(argv)
    if args.trials < 1 or args.max_successes < 0 or not (args.trial_timeout >= 0 and args.max_seconds > 0):  # NaN too
        print("inhand demo: --trials must be >= 1, --max-successes and --trial-timeout >= 0 (0: the policy's "
              "setting), --max-seconds > 0", file=sys.stderr)
        return 2
    if not 16 <= args.camera_size <= 2048 or args.video_size < 16:
        print("inhand demo: --camera-size must be in 16..2048 and --video-size >= 16", file=sys.stderr)
        return 2
    share = share_directory()
    policy = args.policy_checkpoint or share / POLICY_CHECKPOINT
    pose = args.pose_checkpoint or share / POSE_CHECKPOINT
    missing = [f"{kind} {path}" for kind, path in (("policy", policy), ("pose estimator", pose)) if not path.is_file()]
    if missing:
        print(f"inhand demo: checkpoint not found: {'; '.join(missing)}. The demo runs the shipped checkpoints "
              "(`inhand export` writes a policy, `inhand vision train` a pose estimator); pass others with "
              "--policy-checkpoint / --pose-checkpoint, or run `inhand demo --episode` (no checkpoints).",
              file=sys.stderr)
        return 2
    check_output_dir(args.out, [policy, pose], args.force, "--out")
    check_output_file(args.out / "demo.mp4", "MP4 video", [policy, pose], args.force, "--out")
    check_output_file(args.out / "demo.png", "PNG image", [policy, pose], args.force, "--out")
    args.out.mkdir(parents=True, exist_ok=True)
    run = run_system(args, policy.resolve(), pose.resolve())
    if run["exit_code"] != 0 or not (run["bag"] / "metadata.yaml").is_file():
        print(f"inhand demo: the system stopped with exit code {run['exit_code']}; the failing node said why above",
              file=sys.stderr)
        return run["exit_code"] or 1
    from ros_nodes.trial_report import read_run
    from sim.config import load_env_config

    report = read_run(run["bag"], load_env_config().task.drop_height_m)
    errors = read_pose_errors(run["bag"])
    _say("rendering the replay video")
    video, frame = write_replay(run["bag"], args.out, args.video_size)
    trials = report["trials"]
    print(json.dumps({
        "trials": [trial.to_json() for trial in trials],
        "consecutive_successes": [trial.successes for trial in trials],
        "drops": {"in_sim": sum(trial.fell_in_sim for trial in trials),
                  "reported": sum(trial.ended_by == "drop" for trial in trials),
                  "reported_of_those_in_sim": sum(trial.fell_in_sim and trial.ended_by == "drop" for trial in trials)},
        "safety": report["safety"],
        "stopped_by": run["stopped_by"],
        "pose_estimate_vs_truth": errors,
        "bag": str(run["bag"]),
        "video": str(video),
        "frame": str(frame),
        "policy_checkpoint": str(policy),
        "pose_checkpoint": str(pose),
        "wall_seconds_system": run["wall_seconds"],
        "dds_domain_id": run["domain_id"],
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
