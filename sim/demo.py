"""`inhand demo --episode`: one fully randomized episode of the simulated hand, written as MP4 + PNG.

The hand follows a scripted policy: small random nudges of every joint target around its current position, which
keeps the cube on the palm for most of the episode; no checkpoint is needed. Plain `inhand demo` (`make demo`) runs
the whole ROS system with the shipped checkpoints instead: see ros_nodes.demo.
"""
from __future__ import annotations

import argparse
import json

import cv2
import gymnasium
import numpy as np

import sim  # noqa: F401 - registers the env ids
from sim.contract import CONSECUTIVE_SUCCESSES, DROPPED, TIMED_OUT
from sim.media import write_image, write_video
from sim.output_paths import check_output_dir, check_output_file


def overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """The frame with a few lines of white text in its top-left corner."""
    frame = frame.copy()
    for row, text in enumerate(lines):
        cv2.putText(frame, text, (6, 16 + 16 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def run_episode(config: str | None, camera: str, size: int, seed: int, max_steps: int) -> tuple[list[np.ndarray], dict]:
    """Frames of one episode and its summary."""
    env = gymnasium.make("inhand/Reorient-v0", config=config, render_mode="rgb_array", camera=camera, width=size, height=size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    frames = [env.render()]
    total_reward, info, step = 0.0, {CONSECUTIVE_SUCCESSES: 0, DROPPED: False, TIMED_OUT: False}, 0
    for step in range(1, max_steps + 1):
        # bins 4..6 of 11: nudges of at most a fifth of each half range per step
        _, reward, terminated, truncated, info = env.step(rng.integers(4, 7, 20))
        total_reward += reward
        seconds = step * env.unwrapped.batch.control_dt
        frames.append(overlay(env.render(), [f"t {seconds:4.1f} s", f"successes {info[CONSECUTIVE_SUCCESSES]}"]))
        if terminated or truncated:
            break
    env.close()
    summary = {
        "steps": step,
        "simulated_seconds": round(step * env.unwrapped.batch.control_dt, 3),
        "return": round(total_reward, 3),
        "consecutive_successes": int(info[CONSECUTIVE_SUCCESSES]),
        "dropped": bool(info[DROPPED]),
        "timed_out": bool(info[TIMED_OUT]),
    }
    return frames, summary


def main(argv: list[str]) -> int:
    """`inhand demo --episode ...`: run the demo episode, print where its video and frame were written."""
    argv = [arg for arg in argv if arg != "--episode"]
    parser = argparse.ArgumentParser(prog="inhand demo --episode", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="folder for demo.mp4 and demo.png")
    parser.add_argument("--config", default=None, help="env YAML (default config/env.yaml)")
    parser.add_argument("--camera", default="front", choices=("left", "front", "right", "overview"))
    parser.add_argument("--size", type=int, default=320, help="video width and height in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=150, help="control steps of 80 ms at most")
    parser.add_argument("--force", action="store_true",
                        help="write even over files of another kind or inside a bag or input folder")
    args = parser.parse_args(argv)
    out = check_output_dir(args.out, [args.config], args.force, "--out")
    check_output_file(out / "demo.mp4", "MP4 video", [args.config], args.force, "--out")
    check_output_file(out / "demo.png", "PNG image", [args.config], args.force, "--out")
    frames, summary = run_episode(args.config, args.camera, args.size, args.seed, args.max_steps)
    video = write_video(out / "demo.mp4", frames, fps=12.5)
    frame = write_image(out / "demo.png", frames[len(frames) // 2])
    print(json.dumps({**summary, "video": str(video), "frame": str(frame)}, indent=2))
    return 0
