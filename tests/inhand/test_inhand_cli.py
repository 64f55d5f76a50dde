"""The `inhand` command: dispatch, usage errors, and the sim benchmark's JSON."""
import json
import subprocess
import sys

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


def test_demo_writes_video_and_frame(tmp_path):
    command = [sys.executable, "-m", "inhand.cli", "demo", "--out", str(tmp_path), "--size", "96", "--max-steps", "12"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    summary = json.loads(result.stdout)
    assert summary["video"].endswith("demo.mp4") and (tmp_path / "demo.mp4").stat().st_size > 1000
    assert (tmp_path / "demo.png").stat().st_size > 1000 and 1 <= summary["steps"] <= 12
