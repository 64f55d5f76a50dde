"""The training loop: rollouts from a backend, PPO updates, metrics, atomic checkpoints, resume from one file.

Envs restart (with a seed from the run's env seed stream) only when train() begins, so a checkpoint never cuts an
episode short: writing one leaves the rollout untouched. A training checkpoint holds all a run needs to go on
(weights, optimizer, normalizers, counters, RNG states, recent episodes, the metrics history), so a run moves
between machines as that one file. Episodes in progress when a run stops are lost; the resumed run starts new ones.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import yaml

from policies.config import HAND_SCHEDULES, TrainConfig, incompatible_keys, config_from_mapping
from policies.metrics import POLICY_METRICS
from policies.models import EnvSpec
from policies.ppo import PPO, build_ppo
from policies.rollout import Episodes, RolloutWorker
from policies.storage import RolloutStorage
from policies.env_factory import make_env
from sim import checkpoint
from sim.adr import AdrState, AdrTable
from sim.atomic import atomic_write
from sim.cores import default_num_threads, resolve_device
from sim.errors import CheckpointError
from sim.metrics_log import MetricsLog, history_rows, pack_rows
from sim.stop_signal import StopSignal
from sim.config_loading import flatten_mapping, to_mapping
from sim.contract import (ADR_BOUNDARY, CONSECUTIVE_SUCCESSES, DROPPED, EPISODE_KEYS, EPISODE_LENGTH, EPISODE_RETURN,
                          TIMED_OUT)

CHECKPOINT_GLOB = "update_*.pt"
# drawing the PNG of a long campaign (10,000 rows, 26 ADR boundaries) takes about 2 s of the training thread, so
# checkpoints redraw it at most every 5 minutes (at 30 s it cost 3.7% of wall time); TensorBoard is the live view
PLOT_INTERVAL_S = 300.0


class Backend(Protocol):
    """Where rollouts come from: envs in this process (local) or rollout actors (Ray)."""

    spec: EnvSpec
    num_streams: int  # env seeds drawn per restart
    adr_table: AdrTable | None  # the boundaries automatic domain randomization moves; None: fixed ranges

    def set_adr_values(self, values: np.ndarray) -> None:
        """ADR boundary values for the episodes the envs start from now on."""

    def attach(self, ppo: PPO) -> None:
        """Roll out with this learner's parameters from now on."""

    def restart(self, seeds: list[int]) -> None:
        """Reset every env (one seed per stream), zero LSTM states."""

    def collect(self) -> tuple[RolloutStorage, Episodes]:
        """One rollout of all envs with returns computed, and the episodes finished in it."""

    def close(self) -> None:
        """Release envs and workers."""


class LocalBackend:
    """One VecEnv in this process (it may run its own worker processes), stepped by the learner's networks."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.env = make_env(config.env, config.env.num_envs, seed=config.seed)
        self.spec = EnvSpec.from_env(self.env)
        self.adr_table = getattr(self.env, "adr_table", None)
        self.num_streams = 1
        self.worker: RolloutWorker | None = None

    def set_adr_values(self, values: np.ndarray) -> None:
        """Hand the VecEnv the ADR boundary values."""
        self.env.set_adr_values(values)

    def attach(self, ppo: PPO) -> None:
        """Roll out with `ppo`'s own networks."""
        self.worker = RolloutWorker(self.env, ppo, self.config.runner.rollout_steps, self.config.model.lstm_size)

    def restart(self, seeds: list[int]) -> None:
        """Reset the VecEnv with seeds[0]."""
        self._worker().restart(seeds[0])

    def collect(self) -> tuple[RolloutStorage, Episodes]:
        """Roll out T steps into the learner's own storage."""
        worker = self._worker()
        episodes = worker.collect()
        return worker.ppo.storage, episodes

    def close(self) -> None:
        """Close the VecEnv."""
        self.env.close()

    def _worker(self) -> RolloutWorker:
        if self.worker is None:
            raise RuntimeError("LocalBackend used before attach(ppo)")
        return self.worker


def checkpoint_paths(run_dir: str | Path) -> list[Path]:
    """A run folder's training checkpoints, oldest first."""
    return sorted((Path(run_dir) / "checkpoints").glob(CHECKPOINT_GLOB))


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest training checkpoint of a run folder."""
    paths = checkpoint_paths(run_dir)
    if not paths:
        raise CheckpointError(f"{run_dir}: no checkpoints/{CHECKPOINT_GLOB} to resume from")
    return paths[-1]


def resume_paths(resume: Path, run_dir: str | None) -> tuple[Path, Path | None]:
    """--resume (a run folder or a checkpoint file) and --run-dir -> (checkpoint file, run folder or None: new).

    A run folder continues in place from its newest checkpoint; a file inside a run's checkpoints/ folder
    continues that run; any other file (one carried between machines) starts a folder of its own.
    """
    if resume.is_dir():
        if run_dir and Path(run_dir).resolve() != resume.resolve():
            raise CheckpointError("--run-dir and --resume name different folders; a resumed run stays in its folder")
        return latest_checkpoint(resume), resume
    if not resume.is_file():
        raise CheckpointError(f"{resume}: no such run folder or checkpoint file to resume")
    if run_dir:
        folder = Path(run_dir)
        inside = resume.resolve().parent == (folder / "checkpoints").resolve()
        if (folder / "metrics.jsonl").exists() and not inside:
            raise CheckpointError(f"{folder} already holds another run; resume {resume} into a new --run-dir")
        return resume, folder
    if resume.parent.name == "checkpoints" and (resume.parent.parent / "config.yaml").is_file():
        return resume, resume.parent.parent
    return resume, None


def resume_config(saved: dict[str, Any], requested: TrainConfig | None, overrides: dict[str, Any],
                  source: str) -> TrainConfig:
    """The config to continue with: the checkpoint's, or `requested`, which may differ only in resumable keys."""
    config = config_from_mapping(saved, source)
    if requested is not None:
        changed = incompatible_keys(config, requested)
        if changed:
            raise CheckpointError(f"{source}: the config differs from the checkpoint's in keys that cannot change on "
                                  f"resume: {'; '.join(changed)}")
        config = requested
    if overrides:
        mapping = to_mapping(config)
        for dotted, value in overrides.items():
            node = mapping
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        updated = config_from_mapping(mapping, f"{source} with --set overrides")
        changed = incompatible_keys(config, updated)
        if changed:
            raise CheckpointError(f"{source}: --set may only change resumable keys on resume; refused: "
                                  f"{'; '.join(changed)}")
        config = updated
    return config


class Runner:
    """Trains a PPO learner on a backend's rollouts; owns the run folder."""

    def __init__(self, config: TrainConfig, backend: Backend, run_dir: str | Path,
                 resume_from: dict[str, Any] | None = None, progress: bool = True,
                 init_from: dict[str, Any] | None = None) -> None:
        self.update_threads = config.runner.torch_threads or default_num_threads()
        self.config, self.backend, self.progress = config, backend, progress
        self.run_dir = Path(run_dir)
        self.ppo = build_ppo(backend.spec, config.model, config.ppo, config.seed,
                             resolve_device(config.runner.device, "runner.device"))
        self.counters = {"update": 0, "env_steps": 0, "episodes": 0}
        self.train_seconds = 0.0
        self.seed_stream = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
        self.recent: deque[dict[str, float]] = deque(maxlen=config.runner.stats_window)
        self.adr = AdrState(backend.adr_table) if backend.adr_table is not None else None
        # fixed for the life of this process: only a resume may change them
        flat = flatten_mapping(to_mapping(config))
        self.schedule = {f"schedule/{key.split('.')[-1]}": flat[key] for key in HAND_SCHEDULES}
        if resume_from is not None and init_from is not None:
            raise CheckpointError("a run either resumes its own checkpoint or starts from another's weights, not both")
        if resume_from is not None:
            self._restore(resume_from)
        if init_from is not None:
            self._initialize(init_from)
        self.backend.attach(self.ppo)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_text = yaml.safe_dump(to_mapping(config), sort_keys=False)
        atomic_write(self.run_dir / "config.yaml", lambda temp: temp.write_text(config_text))
        history = history_rows(resume_from, POLICY_METRICS) if resume_from is not None else []
        self.metrics = MetricsLog(self.run_dir, POLICY_METRICS, history)
        self.stop = StopSignal()
        self.last_plot = -float("inf")

    @property
    def samples_per_update(self) -> int:
        """Env steps per update: T * N."""
        return self.config.runner.rollout_steps * self.config.env.num_envs

    def train(self) -> dict[str, Any]:
        """Run updates until runner.total_updates (or a stop signal), checkpointing along the way."""
        from tqdm import tqdm

        total = self.config.runner.total_updates
        bar = tqdm(total=total * self.samples_per_update, initial=self.counters["env_steps"], unit="step",
                   unit_scale=True, dynamic_ncols=True, disable=not self.progress, desc="train")
        try:
            with self.stop:
                if self.counters["update"] < total:
                    self.backend.restart([int(seed) for seed in self.seed_stream.integers(0, 2**31 - 1,
                                                                                         self.backend.num_streams)])
                unsaved = False
                while self.counters["update"] < total and not self.stop.requested:
                    row = self._update()
                    bar.update(self.samples_per_update)
                    bar.set_postfix(update=row["update"], sps=f"{row['samples_per_s']:.0f}",
                                    successes=_fmt(row["recent_successes_mean"]))
                    update = self.counters["update"]
                    unsaved = True
                    if update % self.config.runner.checkpoint_every == 0 or update == total or self.stop.requested:
                        self.save_checkpoint()
                        unsaved = False
                if unsaved:  # a stop signal that landed after this update's checkpoint decision
                    self.save_checkpoint()
            self.plot()
        finally:
            bar.close()
            self.metrics.close()
        return {"run_dir": str(self.run_dir), **self.counters,
                "recent_successes_mean": self.metrics.rows[-1]["recent_successes_mean"] if self.metrics.rows else None,
                "stopped_early": self.counters["update"] < total}

    def _update(self) -> dict[str, Any]:
        start = time.perf_counter()
        torch.set_num_threads(1)
        if self.adr is not None:
            self.backend.set_adr_values(self.adr.values)
        storage, episodes = self.backend.collect()
        rollout_seconds = time.perf_counter() - start
        torch.set_num_threads(self.update_threads)
        stats = self.ppo.update(storage)
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        finished = len(episodes[EPISODE_RETURN])
        for index in range(finished):
            self.recent.append({key: float(episodes[key][index]) for key in EPISODE_KEYS})
        if self.adr is not None:
            for boundary, successes in zip(episodes[ADR_BOUNDARY], episodes[CONSECUTIVE_SUCCESSES]):
                self.adr.record(int(boundary), float(successes))
        self.counters["update"] += 1
        self.counters["env_steps"] += self.samples_per_update
        self.counters["episodes"] += finished
        row = {**self.counters, "train_seconds": self.train_seconds, "samples_per_s": self.samples_per_update / seconds,
               "rollout_fraction": rollout_seconds / seconds, "episodes_finished": finished,
               "successes_mean": float(np.mean(episodes[CONSECUTIVE_SUCCESSES])) if finished else None,
               **self._recent_stats(), **stats, **(self.adr.metrics() if self.adr is not None else {}),
               **self.schedule}
        self.metrics.write(row)
        return row

    def _recent_stats(self) -> dict[str, float | None]:
        if not self.recent:
            return {"recent_successes_mean": None, "recent_successes_median": None, "recent_return_mean": None,
                    "recent_length_mean": None, "recent_drop_rate": None, "recent_timeout_rate": None}
        column = {key: np.array([episode[key] for episode in self.recent]) for key in EPISODE_KEYS}
        return {"recent_successes_mean": float(column[CONSECUTIVE_SUCCESSES].mean()),
                "recent_successes_median": float(np.median(column[CONSECUTIVE_SUCCESSES])),
                "recent_return_mean": float(column[EPISODE_RETURN].mean()),
                "recent_length_mean": float(column[EPISODE_LENGTH].mean()),
                "recent_drop_rate": float(column[DROPPED].mean()),
                "recent_timeout_rate": float(column[TIMED_OUT].mean())}

    def state(self) -> dict[str, Any]:
        """The training checkpoint's payload: everything needed to continue this run exactly."""
        recent = {key: torch.tensor([episode[key] for episode in self.recent], dtype=torch.float64)
                  for key in EPISODE_KEYS}
        return {"config": to_mapping(self.config), "spec": self.backend.spec.to_mapping(),
                "actor": self.ppo.actor.state_dict(), "critic": self.ppo.critic.state_dict(),
                "optimizer": self.ppo.optimizer.state_dict(), "counters": dict(self.counters),
                "adr": self.adr.to_mapping() if self.adr is not None else None,
                "train_seconds": self.train_seconds, "recent_episodes": recent, "metrics": pack_rows(self.metrics.rows),
                "rng": {"torch": torch.get_rng_state(), "minibatch": self.ppo.rng.bit_generator.state,
                        "env_seeds": self.seed_stream.bit_generator.state}}

    def save_checkpoint(self) -> Path:
        """Write checkpoints/update_<N>.pt atomically, drop the oldest beyond keep_checkpoints, maybe redraw."""
        path = self.run_dir / "checkpoints" / f"update_{self.counters['update']:08d}.pt"
        checkpoint.save(path, "training", self.state())
        for old in checkpoint_paths(self.run_dir)[:-self.config.runner.keep_checkpoints]:
            old.unlink()
        if time.monotonic() - self.last_plot > PLOT_INTERVAL_S:
            self.plot()
        return path

    def plot(self) -> None:
        """Redraw curves.png."""
        self.metrics.plot()
        self.last_plot = time.monotonic()

    def _restore(self, content: dict[str, Any]) -> None:
        self._load_weights(content, ("actor", "critic", "optimizer"), "checkpoint")
        # the optimizer's saved state carries the step size it ran with; the resumed config's may be lower
        for group in self.ppo.optimizer.param_groups:
            group["lr"] = self.config.ppo.learning_rate
        self.counters = {key: int(value) for key, value in content["counters"].items()}
        self.train_seconds = float(content["train_seconds"])
        recent = content["recent_episodes"]
        for index in range(len(recent[EPISODE_RETURN])):
            self.recent.append({key: float(recent[key][index]) for key in EPISODE_KEYS})
        saved_adr = content.get("adr")
        if (saved_adr is None) != (self.adr is None):
            raise CheckpointError("the checkpoint was trained with randomization.mode "
                                  f"{'fixed' if saved_adr is None else 'adr'}, this env config uses "
                                  f"{'fixed' if self.adr is None else 'adr'}; start a new run with --init instead")
        if self.adr is not None:
            self.adr.restore(saved_adr, "checkpoint")
        torch.set_rng_state(content["rng"]["torch"])
        self.ppo.rng.bit_generator.state = content["rng"]["minibatch"]
        self.seed_stream.bit_generator.state = content["rng"]["env_seeds"]

    def _initialize(self, content: dict[str, Any]) -> None:
        """Start from another run's actor (and critic, when the checkpoint holds one); counters and optimizer start
        fresh, so a policy trained on one goal mode can seed training on another."""
        self._load_weights(content, ("actor", "critic") if "critic" in content else ("actor",), "initial")

    def _load_weights(self, content: dict[str, Any], names: tuple[str, ...], label: str) -> None:
        """Load the named state dicts (actor, critic, optimizer) after checking the checkpoint's env spec."""
        saved_spec = EnvSpec(**content["spec"])
        if saved_spec != self.backend.spec:
            raise CheckpointError(f"{label} weights were trained on env {saved_spec}, this env is {self.backend.spec}")
        for name in names:
            try:
                getattr(self.ppo, name).load_state_dict(content[name])
            except (RuntimeError, ValueError, KeyError) as error:
                raise CheckpointError(f"{label} {name} weights do not fit the configured model: {error}") from error


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
