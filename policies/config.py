"""The training configuration: env source, model widths, PPO hyper-parameters, runner and Ray settings.

Defaults are the small CPU configuration of config/train.yaml; Dactyl's values (appendix D) are listed there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.cores import DEVICES
from sim.config_loading import ConfigError, bound, choice, flatten_mapping, from_mapping, load_config, to_mapping


@dataclass(frozen=True)
class EnvSection:
    """Which VecEnv to train on and how many copies."""

    # "module:function" called as function(env_section, num_envs, seed) -> VecEnv
    factory: str = "policies.sim_env:make_vec_env"
    # env YAML handed to the factory; null: the factory's default (config/env.yaml for the inhand sim)
    config: str | None = None
    # overrides the env YAML's goal mode when set
    goal_mode: str | None = field(default=None, metadata=choice("z", "xyz"))
    # overrides the env YAML's task.goal_max_angle_rad when set: how far xyz goals may be, a curriculum that a
    # resumed run may widen (evaluation always uses any orientation)
    goal_max_angle_rad: float | None = field(default=None, metadata=bound(0.5, math.pi))
    # override the env YAML's randomization.adr thresholds when set (ADR runs only): they count consecutive
    # successes, which mean a different skill once the curriculum's goals get harder, so a resumed run may move them
    adr_high_threshold: float | None = field(default=None, metadata=bound(0.0, 10_000.0))
    adr_low_threshold: float | None = field(default=None, metadata=bound(0.0, 10_000.0))
    num_envs: int = field(default=64, metadata=bound(1, 1_000_000))
    # worker processes inside one VecEnv (0: step all envs in this process)
    num_workers: int = field(default=0, metadata=bound(0, 4096))
    # physics threads of the in-process VecEnv (num_workers 0); null: one per core this process may use
    num_threads: int | None = field(default=None, metadata=bound(1, 64))


@dataclass(frozen=True)
class ModelConfig:
    """Actor and critic share this shape (separate weights): normalizer -> dense ReLU -> LSTM -> head."""

    dense_size: int = field(default=256, metadata=bound(1, 65536))
    lstm_size: int = field(default=128, metadata=bound(1, 65536))
    # "none" zeroes the LSTM state before every step: a feed-forward ablation with the same parameters
    memory: str = field(default="lstm", metadata=choice("lstm", "none"))
    observation_clip: float = field(default=5.0, metadata=bound(0.1, 1e6))
    # initial log standard deviation of the Gaussian head (Box action spaces only)
    initial_log_std: float = field(default=-0.5, metadata=bound(-10.0, 2.0))


@dataclass(frozen=True)
class PPOConfig:
    """PPO with GAE, clipped surrogate, entropy bonus and normalized value targets."""

    gamma: float = field(default=0.998, metadata=bound(0.0, 1.0))
    gae_lambda: float = field(default=0.95, metadata=bound(0.0, 1.0))
    clip: float = field(default=0.2, metadata=bound(0.0, 10.0))
    entropy_coef: float = field(default=0.01, metadata=bound(0.0, 10.0))
    value_coef: float = field(default=1.0, metadata=bound(0.0, 100.0))
    learning_rate: float = field(default=3e-4, metadata=bound(0.0, 1.0))
    adam_eps: float = field(default=1e-5, metadata=bound(0.0, 1.0))
    max_grad_norm: float = field(default=1.0, metadata=bound(0.0, 1e6))
    epochs: int = field(default=4, metadata=bound(1, 1000))
    # envs are split into this many minibatches, so every minibatch holds whole sequences
    num_minibatches: int = field(default=4, metadata=bound(1, 1_000_000))
    # truncated BPTT: gradients flow through at most this many steps
    chunk_len: int = field(default=10, metadata=bound(1, 100_000))
    # bf16: the update runs the encoders and LSTMs under bfloat16 autocast (its matrix products are most of its
    # time; about 1.2x faster updates on CPUs with AVX512-BF16 or AMX, slower on CPUs without them). The action
    # and value heads, the losses, the optimizer and all rollout inference stay float32.
    precision: str = field(default="bf16", metadata=choice("fp32", "bf16"))


@dataclass(frozen=True)
class RunnerConfig:
    """The training loop: rollout length, run length, checkpoints, logging."""

    rollout_steps: int = field(default=80, metadata=bound(1, 1_000_000))
    total_updates: int = field(default=2000, metadata=bound(1, 1_000_000_000))
    # a checkpoint every this many updates; envs restart from the seed stream there, so resume is exact
    checkpoint_every: int = field(default=25, metadata=bound(1, 1_000_000_000))
    keep_checkpoints: int = field(default=3, metadata=bound(1, 1_000_000))
    # finished episodes averaged for the progress bar and the "recent" metrics
    stats_window: int = field(default=100, metadata=bound(1, 1_000_000))
    runs_dir: str = "runs"
    device: str = field(default="cpu", metadata=choice(*DEVICES))
    # threads of the PPO update; rollout inference always runs on one, since idle OpenMP workers spin on the
    # cores the physics threads need. null: one per core this process may use
    torch_threads: int | None = field(default=None, metadata=bound(1, 1024))


@dataclass(frozen=True)
class RayConfig:
    """The Ray backend: rollout actors, each owning one VecEnv with num_envs / num_workers envs."""

    num_workers: int = field(default=2, metadata=bound(1, 100_000))
    cpus_per_worker: float = field(default=1.0, metadata=bound(0.0, 1024.0))
    # cluster to join ("auto" or host:port); null starts a local Ray with local_num_cpus
    address: str | None = None
    local_num_cpus: int = field(default=2, metadata=bound(1, 4096))


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs."""

    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))
    env: EnvSection = EnvSection()
    model: ModelConfig = ModelConfig()
    ppo: PPOConfig = PPOConfig()
    runner: RunnerConfig = RunnerConfig()
    ray: RayConfig = RayConfig()


# schedules set by hand on resume (the runner logs each update's values): lower the bonus once the policy holds
# the cube, the step size once its curve flattens (the optimizer's moments carry over), lengthen the horizon once
# drops cost more than slow turns (OpenAI Five raised its gamma during training; the value normalizer follows the
# new returns), a goal curriculum: xyz goals nearer the cube's orientation at first, and the ADR thresholds that
# go with it
HAND_SCHEDULES = ("ppo.learning_rate", "ppo.entropy_coef", "ppo.gamma", "env.goal_max_angle_rad",
                  "env.adr_high_threshold", "env.adr_low_threshold")

# keys that may differ between a checkpoint's config and the config it is resumed with
RESUMABLE_KEYS = frozenset({"runner.total_updates", "runner.checkpoint_every", "runner.keep_checkpoints",
                            "runner.runs_dir", "runner.torch_threads", "runner.device", "ray.address",
                            "ray.local_num_cpus", "ray.cpus_per_worker", "env.num_workers",
                            "env.num_threads",
                            # arithmetic only: the same networks and losses, rounded differently
                            "ppo.precision",
                            *HAND_SCHEDULES})


def validate(config: TrainConfig, source: str = "<config>") -> TrainConfig:
    """Check the cross-field constraints a single bound cannot express; return the config unchanged."""
    if config.runner.rollout_steps % config.ppo.chunk_len:
        raise ConfigError(
            f"{source}: runner.rollout_steps ({config.runner.rollout_steps}) must be a multiple of "
            f"ppo.chunk_len ({config.ppo.chunk_len}) so BPTT chunks tile the rollout"
        )
    if config.env.num_envs % config.ppo.num_minibatches:
        raise ConfigError(
            f"{source}: env.num_envs ({config.env.num_envs}) must be a multiple of ppo.num_minibatches "
            f"({config.ppo.num_minibatches}): minibatches hold whole envs"
        )
    if ":" not in config.env.factory:
        raise ConfigError(f"{source}: key 'env.factory': expected 'module:function', got {config.env.factory!r}")
    return config


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a train YAML (dotted-key overrides allowed) and validate it."""
    return validate(load_config(TrainConfig, path, overrides), str(path))


def config_from_mapping(mapping: dict[str, Any], source: str = "<config>") -> TrainConfig:
    """Build and validate a TrainConfig from plain data (a checkpoint's or run folder's copy)."""
    return validate(from_mapping(TrainConfig, mapping, source=source), source)


def incompatible_keys(saved: TrainConfig, requested: TrainConfig) -> list[str]:
    """Dotted keys whose values differ and may not change on resume, as 'key: saved -> requested'."""
    old, new = flatten_mapping(to_mapping(saved)), flatten_mapping(to_mapping(requested))
    return [f"{key}: {old[key]!r} -> {new[key]!r}" for key in sorted(old)
            if old[key] != new[key] and key not in RESUMABLE_KEYS]
