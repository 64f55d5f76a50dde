"""`inhand bench learning` on two tiny runs (fixed ranges and ADR): what it reads from the run folders, what it
evaluates, and the bad inputs it refuses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from policies.config import load_train_config
from policies.learning_speed import main
from policies.runner import LocalBackend, Runner, checkpoint_paths
from sim import checkpoint
from tests.policies.memory_envs import REPO_ROOT

ENVS, STEPS = 4, 10


def tiny_run(root: Path, mode: str) -> Path:
    env_yaml = root / f"{mode}_env.yaml"
    env_yaml.write_text(yaml.safe_dump({"task": {"goal_mode": "z", "timeout_s": 0.24},
                                        "randomization": {"mode": mode}}))
    config = load_train_config(REPO_ROOT / "config" / "train.yaml", {
        "seed": 3, "env.config": str(env_yaml), "env.num_envs": ENVS, "env.num_threads": 1,
        "model.dense_size": 16, "model.lstm_size": 16, "runner.rollout_steps": STEPS, "ppo.num_minibatches": 2,
        "runner.total_updates": 3, "runner.checkpoint_every": 1, "runner.keep_checkpoints": 2,
        "runner.stats_window": 4})
    runner = Runner(config, LocalBackend(config), root / f"run_{mode}", progress=False)
    runner.train()
    runner.backend.close()
    return root / f"run_{mode}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("learning")
    return tiny_run(root, "fixed"), tiny_run(root, "adr")


def test_runs_are_read_from_their_folders_and_every_kept_checkpoint_is_evaluated(
        runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixed, adr = runs
    png = tmp_path / "speed.png"
    env_yaml = fixed.parent / "fixed_env.yaml"
    assert main([str(fixed), str(adr), "--episodes", "3", "--num-envs", "2", "--seed", "7",
                 "--config", str(env_yaml), "--plot", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["evaluation"] == {"env_config": str(env_yaml), "fixed_ranges": True, "goal_mode": "the run's own",
                                    "episodes": 3, "num_envs": 2, "seed": 7, "deterministic": True}
    assert [run["randomization_mode"] for run in result["runs"].values()] == ["fixed", "adr"]
    for run_dir in runs:
        run = result["runs"][run_dir.name]
        assert run["seed"] == 3 and run["goal_mode"] == "z" and run["num_envs"] == ENVS
        # keep_checkpoints 2 of 3 updates: updates 2 and 3, each ENVS * STEPS env steps
        kept = checkpoint_paths(run_dir)
        assert [point["checkpoint"] for point in run["evaluations"]] == [path.name for path in kept]
        assert [point["update"] for point in run["evaluations"]] == [2, 3]
        assert [point["env_steps"] for point in run["evaluations"]] == [80, 120]
        for point, path in zip(run["evaluations"], kept):
            saved = checkpoint.load(path, ("training",))
            assert point["hours"] == pytest.approx(saved["train_seconds"] / 3600.0)
            assert point["episodes"] == 3 and 0.0 <= point["drop_rate"] <= 1.0
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        expected = [{"env_steps": row["env_steps"], "hours": row["train_seconds"] / 3600.0,
                     "successes_mean": row["recent_successes_mean"]}
                    for row in rows if row["recent_successes_mean"] is not None]
        assert run["training_window"] == expected
        assert expected and run["training_window_last"] == expected[-1]
    assert result["plot"] == str(png) and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_bad_run_folders_are_refused_by_name(runs: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fixed, _ = runs
    assert main([str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'}: not a folder" in capsys.readouterr().err
    twin = tmp_path / fixed.name
    twin.mkdir()
    assert main([str(fixed), str(twin)]) == 2
    assert "distinct names" in capsys.readouterr().err
    assert main([str(twin)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    (twin / "metrics.jsonl").write_text('{"update": 1}\n')
    assert main([str(twin)]) == 2
    assert "metrics.jsonl:1: not a training metrics row" in capsys.readouterr().err
    assert main([str(fixed), "--episodes", "0"]) == 2
    assert "--episodes (0)" in capsys.readouterr().err
    inside = fixed / "speed.png"  # a plot written into a run folder it reads is refused
    assert main([str(fixed), "--plot", str(inside)]) == 2
    assert "--plot" in capsys.readouterr().err and not inside.exists()
