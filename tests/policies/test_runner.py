"""The runner: run folder contents, checkpoints that leave the rollout alone, resume from one file (in process and
after SIGKILL), graceful stop, the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from policies.cli import eval_command
from policies.cli import export, train
from policies.config import load_train_config
from policies.metrics import POLICY_METRICS
from policies.runner import LocalBackend, Runner, checkpoint_paths, latest_checkpoint
from sim import checkpoint
from sim.config_loading import to_mapping
from sim.errors import CheckpointError
from sim.metrics_log import unpack_rows
from sim.stop_signal import StopSignal
from tests.policies.memory_envs import REPO_ROOT, memory_config

# metrics that depend only on the learning, not on wall-clock time
LEARNING_KEYS = ("update", "env_steps", "episodes", "policy_loss", "value_loss", "entropy", "approx_kl",
                 "clip_fraction", "successes_mean", "recent_successes_mean", "return_mean", "value_mean")


def learning(rows):
    return [{key: row[key] for key in LEARNING_KEYS} for row in rows]


def write_config(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(to_mapping(memory_config(**overrides))))
    return path


def run(config, run_dir, resume_from=None):
    runner = Runner(config, LocalBackend(config), run_dir, resume_from=resume_from, progress=False)
    runner.train()
    runner.backend.close()
    return runner


class LateStop(StopSignal):
    """A stop request that lands just after the first update's checkpoint decision (read as False twice)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    @property
    def requested(self) -> bool:
        self.reads += 1
        return self.reads > 2

    @requested.setter
    def requested(self, value: bool) -> None:
        pass


def test_a_stop_that_lands_after_the_checkpoint_decision_still_saves_the_last_update(tmp_path):
    config = memory_config(**{"runner.total_updates": 50, "runner.checkpoint_every": 50})
    runner = Runner(config, LocalBackend(config), tmp_path, progress=False)
    runner.stop = LateStop()
    result = runner.train()
    runner.backend.close()
    assert result["update"] == 1 and result["stopped_early"]
    assert [path.name for path in checkpoint_paths(tmp_path)] == ["update_00000001.pt"]


def test_run_folder_holds_metrics_tensorboard_plot_and_the_newest_checkpoints(tmp_path):
    runner = run(memory_config(**{"runner.total_updates": 5, "runner.checkpoint_every": 1,
                                  "runner.keep_checkpoints": 2}), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[-1]["env_steps"] == 5 * 20 * 32 and rows[-1]["samples_per_s"] > 0
    assert [path.name for path in checkpoint_paths(tmp_path)] == ["update_00000004.pt", "update_00000005.pt"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == to_mapping(runner.config)


def test_checkpoints_leave_the_rollouts_untouched(tmp_path):
    every_update = run(memory_config(**{"runner.total_updates": 4, "runner.checkpoint_every": 1}), tmp_path / "a")
    once = run(memory_config(**{"runner.total_updates": 4, "runner.checkpoint_every": 4}), tmp_path / "b")
    assert len(checkpoint_paths(tmp_path / "a")) == 3 and len(checkpoint_paths(tmp_path / "b")) == 1
    assert learning(every_update.metrics.rows) == learning(once.metrics.rows)
    for name in ("actor", "critic"):
        ours, theirs = getattr(every_update.ppo, name).state_dict(), getattr(once.ppo, name).state_dict()
        assert all(ours[key].equal(theirs[key]) for key in theirs)


def test_a_run_continues_from_one_checkpoint_file_in_a_new_folder(tmp_path, capsys):
    config_path = write_config(tmp_path / "train.yaml", **{"runner.total_updates": 2, "runner.checkpoint_every": 2})
    assert train(["--config", str(config_path), "--run-dir", str(tmp_path / "first"), "--no-progress"]) == 0
    capsys.readouterr()
    first_rows = metric_rows(tmp_path / "first")
    carried = tmp_path / "z.train.pt"
    carried.write_bytes(latest_checkpoint(tmp_path / "first").read_bytes())
    saved = checkpoint.load(carried, checkpoint.POLICY_KINDS)
    assert unpack_rows(saved["metrics"], POLICY_METRICS.integer_keys) == first_rows and len(saved["recent_episodes"]["episode_return"]) > 0

    resumed = []
    for name in ("second", "third"):
        assert train(["--resume", str(carried), "--run-dir", str(tmp_path / name), "--set",
                      "runner.total_updates=4", "--no-progress"]) == 0
        assert json.loads(capsys.readouterr().out)["update"] == 4
        resumed.append(metric_rows(tmp_path / name))
        assert (tmp_path / name / "curves.png").exists()
        assert list((tmp_path / name / "tensorboard").glob("events.out.tfevents.*"))
    # the history up to the file is kept; from one file a resumed run is reproducible
    assert [row["update"] for row in resumed[0]] == [1, 2, 3, 4] and resumed[0][:2] == first_rows
    assert learning(resumed[0]) == learning(resumed[1])
    assert resumed[0][-1]["env_steps"] == 4 * 640
    # a file may not be resumed into a folder that holds another run
    assert train(["--resume", str(carried), "--run-dir", str(tmp_path / "second"), "--no-progress"]) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert train(["--resume", str(tmp_path / "missing.pt"), "--no-progress"]) == 2
    assert "no such run folder or checkpoint file" in capsys.readouterr().err


def test_the_hand_set_schedules_are_logged_every_update_so_a_resume_that_changes_them_shows(tmp_path, capsys):
    config = memory_config(**{"runner.total_updates": 1, "runner.checkpoint_every": 1})
    config_path = write_config(tmp_path / "train.yaml", **{"runner.total_updates": 1, "runner.checkpoint_every": 1})
    assert train(["--config", str(config_path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    assert train(["--resume", str(tmp_path / "run"), "--no-progress", "--set", "runner.total_updates=2",
                  "--set", "ppo.entropy_coef=0.002", "--set", "ppo.learning_rate=0.0001"]) == 0
    capsys.readouterr()
    rows = metric_rows(tmp_path / "run")
    assert [row["schedule/entropy_coef"] for row in rows] == [config.ppo.entropy_coef, 0.002]
    assert [row["schedule/learning_rate"] for row in rows] == [config.ppo.learning_rate, 0.0001]
    assert [row["schedule/gamma"] for row in rows] == [config.ppo.gamma] * 2
    # no curriculum set: the env's own goals, no value to draw
    assert [row["schedule/goal_max_angle_rad"] for row in rows] == [None, None]


def python_command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


TRAIN_IN_SUBPROCESS = "import sys; from policies.cli import train; sys.exit(train(sys.argv[1:]))"


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def wait_for(condition, process, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert condition(), "the training subprocess did not get there in time"


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_sigkill_reproduces_counters_and_curve_and_sigterm_stops_cleanly(tmp_path):
    config_path = write_config(tmp_path / "train.yaml", **{"runner.total_updates": 100000,
                                                            "runner.checkpoint_every": 2})
    run_dir = tmp_path / "run"
    killed = subprocess.Popen(python_command(TRAIN_IN_SUBPROCESS) + ["--config", str(config_path), "--run-dir",
                                                                     str(run_dir), "--no-progress"],
                              cwd=REPO_ROOT, env=subprocess_env(), stderr=subprocess.PIPE)
    wait_for(lambda: checkpoint_paths(run_dir), killed)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=10) == -signal.SIGKILL, killed.stderr.read().decode()
    saved = checkpoint.load(latest_checkpoint(run_dir), checkpoint.POLICY_KINDS)["counters"]["update"]
    assert saved >= 2 and saved % 2 == 0

    resumed = subprocess.Popen(python_command(TRAIN_IN_SUBPROCESS) + ["--resume", str(run_dir), "--no-progress"],
                               cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    # rows past the checkpoint were dropped on resume; wait for two updates beyond it
    wait_for(lambda: len(metric_rows(run_dir)) >= saved + 2, resumed)
    resumed.send_signal(signal.SIGTERM)
    stdout, stderr = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, stderr
    summary = json.loads(stdout.splitlines()[-1])
    final = summary["update"]
    assert summary["stopped_early"] and final >= saved + 2 and summary["env_steps"] == final * 640
    assert checkpoint.load(latest_checkpoint(run_dir), checkpoint.POLICY_KINDS)["counters"]["update"] == final
    rows = metric_rows(run_dir)
    assert [row["update"] for row in rows] == list(range(1, final + 1))
    # the curve up to the checkpoint is an uninterrupted run's; what was logged after it died with the process
    straight = run(memory_config(**{"runner.total_updates": saved, "runner.checkpoint_every": saved}),
                   tmp_path / "straight")
    assert learning(rows[:saved]) == learning(straight.metrics.rows)


def test_cli_train_eval_export(tmp_path, capsys):
    config_path = write_config(tmp_path / "train.yaml", **{"runner.total_updates": 2, "runner.checkpoint_every": 2})
    run_dir = tmp_path / "run"
    assert train(["--config", str(config_path), "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["update"] == 2
    assert train(["--config", str(config_path), "--run-dir", str(run_dir), "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    wider = write_config(tmp_path / "wider.yaml", **{"model.lstm_size": 64})
    assert train(["--resume", str(run_dir), "--config", str(wider), "--no-progress"]) == 2
    assert "model.lstm_size: 32 -> 64" in capsys.readouterr().err

    path = latest_checkpoint(run_dir)
    video = tmp_path / "episode.mp4"
    assert eval_command([str(path), "--episodes", "10", "--num-envs", "4", "--video", str(video)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 10 and result["drop_rate"] == 0.0 and result["timeout_rate"] == 0.0
    assert 0.0 <= result["consecutive_successes"]["mean"] <= 1.0
    assert set(result["consecutive_successes"]) == {"mean", "median", "p90"}
    assert video.stat().st_size > 0

    assert export([str(path), "--out-dir", str(tmp_path / "export")]) == 0
    sizes = json.loads(capsys.readouterr().out)
    assert {Path(name).name for name in sizes} == {"policy.pt", "policy.onnx"}
    assert eval_command([str(tmp_path / "export" / "policy.pt"), "--episodes", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 4

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:1000])
    assert eval_command([str(corrupt), "--episodes", "2"]) == 2
    assert "truncated" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [({"runner.rollout_steps": 25}, "multiple of ppo.chunk_len"),
                                          ({"env.num_envs": 31}, "multiple of ppo.num_minibatches"),
                                          ({"ppo.clip": -1.0}, "outside allowed range")])
def test_bad_train_configs_are_refused_with_the_key(bad, message):
    from sim.config_loading import ConfigError

    with pytest.raises(ConfigError, match=message):
        memory_config(**bad)


def test_init_starts_a_fresh_run_from_another_runs_weights(tmp_path, capsys):
    source = run(memory_config(**{"runner.total_updates": 2, "runner.checkpoint_every": 2}), tmp_path / "source")
    content = checkpoint.load(latest_checkpoint(tmp_path / "source"), checkpoint.POLICY_KINDS)
    config = memory_config(**{"ppo.gamma": 0.9})
    seeded = Runner(config, LocalBackend(config), tmp_path / "seeded", progress=False, init_from=content)
    seeded.backend.close()
    for name in ("actor", "critic"):
        ours, theirs = getattr(seeded.ppo, name).state_dict(), getattr(source.ppo, name).state_dict()
        assert all(ours[key].equal(theirs[key]) for key in theirs)
    assert seeded.counters == {"update": 0, "env_steps": 0, "episodes": 0}
    assert not seeded.ppo.optimizer.state_dict()["state"]

    inference = tmp_path / "policy.pt"
    assert export([str(latest_checkpoint(tmp_path / "source")), "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    actor_only = checkpoint.load(inference, checkpoint.POLICY_KINDS)
    fresh = Runner(config, LocalBackend(config), tmp_path / "fresh", progress=False, init_from=actor_only)
    fresh.backend.close()
    assert all(fresh.ppo.actor.state_dict()[key].equal(value) for key, value in actor_only["actor"].items())

    config_path = write_config(tmp_path / "wide.yaml", **{"model.lstm_size": 64, "runner.total_updates": 1})
    assert train(["--config", str(config_path), "--init", str(inference), "--run-dir", str(tmp_path / "w"),
                  "--no-progress"]) == 2
    assert "initial actor weights do not fit the configured model" in capsys.readouterr().err
    assert train(["--init", str(inference), "--resume", str(tmp_path / "source"), "--no-progress"]) == 2
    assert "give only one of them" in capsys.readouterr().err

    # the entropy bonus may be lowered on resume (annealing by hand); the run folder records the new value
    assert train(["--resume", str(tmp_path / "source"), "--set", "ppo.entropy_coef=0.001", "--no-progress"]) == 0
    assert yaml.safe_load((tmp_path / "source" / "config.yaml").read_text())["ppo"]["entropy_coef"] == 0.001
    # ... and the horizon may be lengthened
    assert train(["--resume", str(tmp_path / "source"), "--set", "ppo.gamma=0.999", "--no-progress"]) == 0
    assert yaml.safe_load((tmp_path / "source" / "config.yaml").read_text())["ppo"]["gamma"] == 0.999
    # ... and so may the step size: the restored optimizer runs with the new one
    assert train(["--resume", str(tmp_path / "source"), "--set", "ppo.learning_rate=0.0001", "--set",
                  "runner.total_updates=4", "--no-progress"]) == 0
    resumed = checkpoint.load(latest_checkpoint(tmp_path / "source"), checkpoint.POLICY_KINDS)
    assert resumed["counters"]["update"] == 4
    assert [group["lr"] for group in resumed["optimizer"]["param_groups"]] == [0.0001]
    assert train(["--resume", str(tmp_path / "source"), "--set", "ppo.clip=0.3", "--no-progress"]) == 2
    assert "ppo.clip" in capsys.readouterr().err


def test_adr_state_trains_checkpoints_and_resumes_with_the_run(tmp_path):
    env_yaml = tmp_path / "adr_env.yaml"
    # every boundary's buffer holds one episode and any mean widens it, so the ranges move within two updates
    env_yaml.write_text(yaml.safe_dump({
        "task": {"goal_mode": "z", "timeout_s": 0.24},
        "randomization": {"mode": "adr", "adr": {"boundary_fraction": 1.0, "buffer_size": 1,
                                                  "high_threshold": 0.0, "low_threshold": 0.0, "steps": 4}}}))
    config = load_train_config(REPO_ROOT / "config" / "train.yaml", {
        "env.config": str(env_yaml), "env.num_envs": 4, "env.num_threads": 1, "model.dense_size": 16,
        "model.lstm_size": 16, "runner.rollout_steps": 10, "ppo.num_minibatches": 2, "runner.total_updates": 2,
        "runner.checkpoint_every": 2})
    first = run(config, tmp_path / "run")
    moved = first.adr.widened.sum()
    assert moved > 0 and first.adr.fractions().max() > 0.0
    row = first.metrics.rows[-1]
    assert row["adr_fraction_mean"] == pytest.approx(float(first.adr.fractions().mean()))
    assert row["adr/physics.mass_scale.hi"] == pytest.approx(float(first.adr.fractions()[
        first.adr.table.names.index("physics.mass_scale.hi")]))
    saved = checkpoint.load(latest_checkpoint(tmp_path / "run"), checkpoint.POLICY_KINDS)
    assert saved["adr"]["values"] == pytest.approx(first.adr.values.tolist())
    resumed = Runner(config, LocalBackend(config), tmp_path / "run", resume_from=saved, progress=False)
    resumed.backend.close()
    np.testing.assert_array_equal(resumed.adr.values, first.adr.values)
    assert resumed.adr.buffers == first.adr.buffers and resumed.adr.widened.tolist() == first.adr.widened.tolist()
    # the thresholds may be raised on resume: no buffer's mean reaches 1000, so every boundary only narrows now
    assert train(["--resume", str(tmp_path / "run"), "--no-progress", "--set", "runner.total_updates=4",
                  "--set", "env.adr_high_threshold=1000", "--set", "env.adr_low_threshold=1000"]) == 0
    raised = checkpoint.load(latest_checkpoint(tmp_path / "run"), checkpoint.POLICY_KINDS)["adr"]
    assert raised["widened"] == first.adr.widened.tolist()
    assert sum(raised["narrowed"]) > first.adr.narrowed.sum()
    assert sum(raised["values"]) != pytest.approx(first.adr.values.sum())
    rows = metric_rows(tmp_path / "run")
    assert [row["schedule/adr_high_threshold"] for row in rows] == [None, None, 1000.0, 1000.0]
    assert [row["schedule/adr_low_threshold"] for row in rows] == [None, None, 1000.0, 1000.0]
    # a checkpoint trained with fixed ranges does not resume into an ADR run
    fixed = dict(saved, adr=None)
    with pytest.raises(CheckpointError, match="randomization.mode fixed"):
        Runner(config, LocalBackend(config), tmp_path / "other", resume_from=fixed, progress=False)
