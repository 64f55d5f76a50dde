"""The `inhand` command: dispatch, usage errors, and the sim benchmark's JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from inhand.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_subcommand_is_a_usage_error(capsys):
    assert main(["fly"]) == 2
    assert "unknown subcommand 'fly'" in capsys.readouterr().err


def test_bench_sim_prints_the_figures_as_json():
    command = [sys.executable, "-m", "inhand.cli", "bench", "sim", "--rounds", "1", "--steps", "6",
               "--num-envs", "2", "--vec-envs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(result.stdout)
    for key in ("env_steps_per_s_randomization_on", "env_steps_per_s_randomization_off", "raw_physics_steps_per_s",
                "overhead_ratio", "sim_seconds_per_wall_second", "vec_steps_per_s_2_workers",
                "render_ms_per_camera_200x200"):
        assert figures[key] > 0, key
    # the env can never spend less time per physics step than MuJoCo does inside it
    assert figures["overhead_ratio"] >= 1.0 and figures["overhead_ratio_single_gym_env"] >= 1.0
    assert figures["overhead_ratio_randomization_off"] >= 1.0
    assert (figures["num_envs_per_batch"], figures["physics_timestep_s"], figures["substeps"]) == (2, 0.008, 10)
    # simulated seconds: one 80 ms control period per env step, one 8 ms timestep per physics step
    assert figures["sim_seconds_per_wall_second"] == pytest.approx(
        figures["env_steps_per_s_randomization_on"] * 0.08, rel=1e-12)
    assert figures["raw_sim_seconds_per_wall_second"] == pytest.approx(
        figures["raw_physics_steps_per_s"] * 0.008, rel=1e-12)
    # the speed-ups are the layouts' rates side by side
    assert figures["thread_speedup_2_threads"] == (figures["vec_steps_per_s_2_threads"]
                                                   / figures["vec_steps_per_s_1_process"])
    assert figures["vec_speedup_2_workers"] == (figures["vec_steps_per_s_2_workers"]
                                                / figures["vec_steps_per_s_1_process"])


def test_demo_episode_writes_video_and_frame(tmp_path):
    command = [sys.executable, "-m", "inhand.cli", "demo", "--episode", "--out", str(tmp_path), "--size", "96",
               "--max-steps", "12"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    summary = json.loads(result.stdout)
    assert summary["video"].endswith("demo.mp4") and (tmp_path / "demo.mp4").stat().st_size > 1000
    assert (tmp_path / "demo.png").stat().st_size > 1000 and 1 <= summary["steps"] <= 12


def test_demo_runs_the_sim_system_for_the_trials_asked_and_replays_the_bag(tmp_path):
    from ros_nodes.bench_system import write_untrained_checkpoint, write_untrained_pose_checkpoint

    policy = write_untrained_checkpoint(tmp_path / "policy.pt", dense_size=32, lstm_size=16, seed=1)
    pose = write_untrained_pose_checkpoint(tmp_path / "pose.pt", input_size=48, seed=1)
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "inhand.cli", "demo", "--out", str(out), "--policy-checkpoint", str(policy),
               "--pose-checkpoint", str(pose), "--trials", "1", "--trial-timeout", "2", "--camera-size", "32",
               "--video-size", "64", "--max-seconds", "60"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # stdout holds the JSON only; the nodes talk on stderr
    # the untrained pose network keeps the cube "on the palm", so the 2 s trial ends by timeout, and the run with it
    # beside the goal manager's report, the sim's truth: the cube stayed on the palm
    (trial,) = summary["trials"]
    assert trial["duration_s"] == pytest.approx(2.0, abs=0.08)  # within one 80 ms control period
    assert {key: value for key, value in trial.items() if key != "duration_s"} == {
        "trial": 1, "successes": 0, "ended_by": "timeout", "sim_truth": {"dropped": False, "dropped_after_s": None}}
    assert summary["consecutive_successes"] == [0] and summary["stopped_by"] == "trials_done"
    assert summary["pose_estimate_vs_truth"]["compared"] >= 25  # 2 s of trial at 12.5 Hz, plus the waits
    assert (out / "demo.mp4").stat().st_size > 1000 and (out / "demo.png").stat().st_size > 100
    assert (Path(summary["bag"]) / "metadata.yaml").is_file() and Path(summary["bag"]).parent == out / "bags"


def test_demo_without_the_shipped_checkpoints_says_so_and_fails(tmp_path):
    missing = tmp_path / "policy_z.pt"
    command = [sys.executable, "-m", "inhand.cli", "demo", "--out", str(tmp_path), "--policy-checkpoint", str(missing)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert f"checkpoint not found: policy {missing}" in result.stderr
    assert not (tmp_path / "bags").exists()


def test_own_errors_are_one_line_and_exit_2_bugs_a_traceback_and_exit_1(capsys, monkeypatch):
    import types

    from sim.config_loading import ConfigError

    module = types.ModuleType("inhand_test_commands")

    def bad_input(argv):
        raise ConfigError("x.yaml: key 'a': expected int, got 'b'")

    def bug(argv):
        raise ZeroDivisionError("division by zero")

    module.bad_input, module.bug = bad_input, bug
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(COMMANDS, "bad", (module.__name__, "bad_input", ""))
    monkeypatch.setitem(COMMANDS, "bug", (module.__name__, "bug", ""))
    assert main(["bad"]) == 2
    assert capsys.readouterr().err == "inhand bad: x.yaml: key 'a': expected int, got 'b'\n"
    assert main(["bug"]) == 1
    error = capsys.readouterr().err
    assert "Traceback" in error and "ZeroDivisionError: division by zero" in error


def test_config_errors_of_bench_and_demo_are_one_line(tmp_path, capsys):
    binary = tmp_path / "env.yaml"
    binary.write_bytes(bytes(range(128, 256)))
    assert main(["bench", "sim", "--config", str(binary)]) == 2
    message = f"{binary}: not a YAML config file: byte 0 is not UTF-8 text (a binary file?)"
    assert capsys.readouterr().err == f"inhand bench: {message}\n"
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main(["demo", "--episode", "--config", str(empty), "--out", str(tmp_path / "demo")]) == 2
    assert capsys.readouterr().err.startswith(f"inhand demo: {empty}: the config file is empty; expected a mapping")
    import torch

    if not torch.cuda.is_available():
        assert main(["train", "--set", "runner.device=cuda", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
        assert "key 'runner.device': 'cuda', but torch" in capsys.readouterr().err
