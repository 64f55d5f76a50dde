"""`inhand bench train`: our LSTM PPO against sb3-contrib's RecurrentPPO on the same env and sizes, side by side.

Each side trains one warm-up update and then --updates timed updates per round; rounds alternate between the sides
so load from elsewhere on the machine hits both alike. Per side: rollout samples/s (env stepping, policy
inference, storage), update samples/s (the PPO epochs over the batch) and whole-loop samples/s (samples per wall
second from the start of the first timed rollout to the end of the last timed update, the loop's own bookkeeping
included). Ours runs through the Runner and LocalBackend of `inhand train`; its rollout and update seconds are
the ones the Runner logs (rollout_fraction, samples_per_s).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

import gymnasium
import numpy as np
import torch

from policies.cli import DEFAULT_CONFIG, default_config
from sim.config_loading import parse_overrides
from policies.config import EnvSection, TrainConfig, load_train_config
from policies.runner import LocalBackend, Runner
from policies.sim_env import section_env_config, sim_vec_env
from sim.bench import physics_limit, resident_bytes_per_env
from sim.cores import default_num_threads
from sim.config import EnvConfig, load_env_config
from sim.contract import VecEnv
from sim.config_loading import ConfigError

WARMUP_UPDATES = 1
# control periods per env of the raw mj_step loop that gives physics_limit_samples_per_s
PHYSICS_LIMIT_STEPS = 40
SIM_FACTORY = EnvSection().factory
CONTINUOUS_FACTORY = "policies.bench:make_continuous_sim_env"
PEER_INSTALL_HINT = "sb3-contrib is not installed; it is a benchmark-only extra: pip install inhand[bench]"
PEER_LAYOUTS = ("ours", "sb3")


class PeerMissing(RuntimeError):
    """sb3-contrib (the RecurrentPPO side) is not installed."""


@dataclasses.dataclass(frozen=True)
class UpdateTiming:
    """One update: wall-clock span (perf_counter seconds) and the seconds spent in its parts."""

    begin: float
    end: float
    rollout_s: float
    update_s: float
    env_step_s: float


@dataclasses.dataclass
class SideResult:
    """Timings of one side, one list per round, and what it trained."""

    rounds: list[list[UpdateTiming]]
    samples_per_update: int
    parameters: int
    action_space: str
    env: str


class TimedVecEnv:
    """A VecEnv that adds up the wall time spent in its step calls (the auto-resets inside them included)."""

    def __init__(self, env: VecEnv) -> None:
        self.env = env
        self.step_seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        """The wrapped env's step, timed."""
        begin = time.perf_counter()
        result = self.env.step(actions)
        self.step_seconds += time.perf_counter() - begin
        return result


class TimedRunner(Runner):
    """The training Runner, recording each update's wall-clock span and the env step time inside it."""

    def __init__(self, *args: Any, env_timer: TimedVecEnv, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env_timer = env_timer
        self.timings: list[UpdateTiming] = []

    def _update(self) -> dict[str, Any]:
        begin, env_before = time.perf_counter(), self.env_timer.step_seconds
        row = super()._update()
        end = time.perf_counter()
        # the Runner's own figures: seconds = T * N / samples_per_s, of which rollout_fraction collecting
        seconds = self.samples_per_update / row["samples_per_s"]
        rollout_s = row["rollout_fraction"] * seconds
        self.timings.append(UpdateTiming(begin, end, rollout_s, seconds - rollout_s,
                                         self.env_timer.step_seconds - env_before))
        return row


def continuous_env_config(section: EnvSection) -> EnvConfig:
    """The env YAML of `section` with its goal mode applied and Box actions."""
    return section_env_config(section).with_options(action_type="continuous")


def make_continuous_sim_env(section: EnvSection, num_envs: int, seed: int) -> VecEnv:
    """policies.sim_env's VecEnv with Box actions: our learner on the action space the RecurrentPPO side gets."""
    return sim_vec_env(continuous_env_config(section), section, num_envs, seed)


def configured_action_type(config: TrainConfig) -> str:
    """'discrete' or 'continuous': the action type of the env the config trains on (inhand sim only)."""
    return load_env_config(config.env.config).task.action_type


def run_ours(config: TrainConfig, updates: int) -> SideResult:
    """One round of our learner: a warm-up update and `updates` timed ones through Runner.train()."""
    total = WARMUP_UPDATES + updates
    config = dataclasses.replace(config, runner=dataclasses.replace(config.runner, total_updates=total,
                                                                     checkpoint_every=total))
    backend = LocalBackend(config)
    env_timer = TimedVecEnv(backend.env)
    backend.env = env_timer
    try:
        with tempfile.TemporaryDirectory(prefix="inhand-bench-train-") as run_dir:
            runner = TimedRunner(config, backend, run_dir, progress=False, env_timer=env_timer)
            runner.train()
    finally:
        backend.close()
    spec = backend.spec
    action_space = (f"discrete {spec.num_actions} x {spec.num_bins} bins" if spec.action_type == "discrete"
                    else f"continuous Box({spec.num_actions})")
    workers = config.env.num_workers
    env = (f"{config.env.factory}: {config.env.num_envs} envs "
           + ("stepped as one batch in this process" if workers == 0 else f"in {workers} worker processes"))
    return SideResult([runner.timings], runner.samples_per_update,
                      sum(parameter.numel() for parameter in runner.ppo.parameters()), action_space, env)


class PolicyObservation(gymnasium.ObservationWrapper):
    """The env's dict observation reduced to its "policy" entry (P,) as a flat Box: SB3 has no asymmetric critic."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["policy"]

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """{"policy": (P,), ...} -> (P,)."""
        return observation["policy"]


def peer_env_id(env_config: EnvConfig) -> str:
    """The registered continuous env id for the config's goal mode."""
    return "inhand/ReorientZContinuous-v0" if env_config.task.goal_mode == "z" else "inhand/ReorientContinuous-v0"


def make_peer_env(env_config: EnvConfig) -> gymnasium.Env:
    """gymnasium.make of the continuous inhand env on `env_config`, policy observation only."""
    import sim  # noqa: F401 - registers the env ids

    return PolicyObservation(gymnasium.make(peer_env_id(env_config), config=env_config))


@dataclasses.dataclass(frozen=True)
class PeerEnvFactory:
    """make_peer_env as a picklable callable (SubprocVecEnv sends it to spawned workers)."""

    env_config: EnvConfig

    def __call__(self) -> gymnasium.Env:
        """A fresh env."""
        return make_peer_env(self.env_config)


def peer_policy_kwargs(config: TrainConfig, layout: str) -> dict[str, Any]:
    """RecurrentPPO policy_kwargs with our sizes: separate actor and critic LSTMs of model.lstm_size.

    layout "ours": a dense ReLU layer of model.dense_size per network in front of its LSTM, linear heads (our
    shape: dense -> LSTM -> head); layout "sb3": SB3's usual shape, LSTM -> net_arch [dense_size] -> heads.
    """
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class DenseFeatures(BaseFeaturesExtractor):
        """Observation (B, P) -> dense ReLU features (B, D), the layer our networks put before the LSTM."""

        def __init__(self, observation_space: gymnasium.spaces.Box, features_dim: int) -> None:
            super().__init__(observation_space, features_dim)
            self.layer = torch.nn.Sequential(torch.nn.Linear(observation_space.shape[0], features_dim),
                                             torch.nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            """(B, P) -> (B, D)."""
            return self.layer(observations)

    model = config.model
    common = {"lstm_hidden_size": model.lstm_size, "shared_lstm": False, "enable_critic_lstm": True,
              "activation_fn": torch.nn.ReLU, "log_std_init": model.initial_log_std,
              "optimizer_kwargs": {"eps": config.ppo.adam_eps}}
    if layout == "ours":
        return {**common, "features_extractor_class": DenseFeatures,
                "features_extractor_kwargs": {"features_dim": model.dense_size}, "share_features_extractor": False,
                "net_arch": []}
    if layout == "sb3":
        return {**common, "net_arch": {"pi": [model.dense_size], "vf": [model.dense_size]}}
    raise ConfigError(f"--peer-layout {layout!r}: expected one of {', '.join(PEER_LAYOUTS)}")


def run_recurrent_ppo(config: TrainConfig, updates: int, layout: str) -> SideResult:
    """One round of sb3-contrib's RecurrentPPO with our sizes: a warm-up update and `updates` timed ones."""
    try:
        from sb3_contrib import RecurrentPPO
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnvWrapper
    except ImportError as error:
        raise PeerMissing(PEER_INSTALL_HINT) from error

    class TimedSB3VecEnv(VecEnvWrapper):
        """Adds up the wall time from step_async to the end of step_wait (auto-resets included)."""

        def __init__(self, venv: Any) -> None:
            super().__init__(venv)
            self.step_seconds = 0.0
            self.step_begin = 0.0

        def reset(self) -> Any:
            return self.venv.reset()

        def step_async(self, actions: np.ndarray) -> None:
            self.step_begin = time.perf_counter()
            self.venv.step_async(actions)

        def step_wait(self) -> Any:
            result = self.venv.step_wait()
            self.step_seconds += time.perf_counter() - self.step_begin
            return result

    timings: list[UpdateTiming] = []

    class TimedRecurrentPPO(RecurrentPPO):
        """RecurrentPPO recording the wall time of each collect_rollouts and train call."""

        def collect_rollouts(self, env: Any, *args: Any, **kwargs: Any) -> bool:
            self.rollout_begin, env_before = time.perf_counter(), env.step_seconds
            finished = super().collect_rollouts(env, *args, **kwargs)
            self.rollout_seconds = time.perf_counter() - self.rollout_begin
            self.rollout_env_seconds = env.step_seconds - env_before
            return finished

        def train(self) -> None:
            begin = time.perf_counter()
            super().train()
            end = time.perf_counter()
            timings.append(UpdateTiming(self.rollout_begin, end, self.rollout_seconds, end - begin,
                                        self.rollout_env_seconds))

    env_config = continuous_env_config(config.env)
    num_envs, workers = config.env.num_envs, config.env.num_workers
    factories = [PeerEnvFactory(env_config)] * num_envs
    # SB3's SubprocVecEnv runs one env per process; spawn, since a forked child of a process that rendered hangs
    vec_env = DummyVecEnv(factories) if workers == 0 else SubprocVecEnv(factories, start_method="spawn")
    env = TimedSB3VecEnv(vec_env)
    samples_per_update = config.runner.rollout_steps * num_envs
    ppo = config.ppo
    torch.set_num_threads(config.runner.torch_threads or default_num_threads())
    try:
        model = TimedRecurrentPPO(
            "MlpLstmPolicy", env, learning_rate=ppo.learning_rate, n_steps=config.runner.rollout_steps,
            batch_size=samples_per_update // ppo.num_minibatches, n_epochs=ppo.epochs, gamma=ppo.gamma,
            gae_lambda=ppo.gae_lambda, clip_range=ppo.clip, ent_coef=ppo.entropy_coef, vf_coef=ppo.value_coef,
            max_grad_norm=ppo.max_grad_norm, policy_kwargs=peer_policy_kwargs(config, layout), seed=config.seed,
            device=config.runner.device, verbose=0)
        model.learn(total_timesteps=(WARMUP_UPDATES + updates) * samples_per_update, log_interval=None)
    finally:
        env.close()
    vec_name = ("DummyVecEnv" if workers == 0 else f"SubprocVecEnv ({num_envs} processes)")
    return SideResult([timings], samples_per_update, sum(p.numel() for p in model.policy.parameters()),
                      f"continuous Box({env.action_space.shape[0]})",
                      f"{vec_name} of {num_envs} gymnasium.make({peer_env_id(env_config)!r}) + policy-only wrapper")


def merge_rounds(results: list[SideResult]) -> SideResult:
    """One SideResult holding the rounds of several."""
    first = results[0]
    return dataclasses.replace(first, rounds=[timings for result in results for timings in result.rounds])


def figures(result: SideResult) -> dict[str, Any]:
    """Samples per second of rollout, update and the whole loop over the timed updates of every round."""
    timed = [timings[WARMUP_UPDATES:] for timings in result.rounds]
    updates = sum(len(timings) for timings in timed)
    if updates == 0 or any(not timings for timings in timed):
        raise RuntimeError(f"a round finished no timed update after its {WARMUP_UPDATES} warm-up update(s)")
    samples = updates * result.samples_per_update
    rollout = sum(timing.rollout_s for timings in timed for timing in timings)
    update = sum(timing.update_s for timings in timed for timing in timings)
    env_step = sum(timing.env_step_s for timings in timed for timing in timings)
    walls = [timings[-1].end - timings[0].begin for timings in timed]
    wall = sum(walls)
    return {
        "rollout_samples_per_s": samples / rollout,
        "update_samples_per_s": samples / update,
        "whole_loop_samples_per_s": samples / wall,
        "whole_loop_samples_per_s_per_round": [len(timings) * result.samples_per_update / seconds
                                               for timings, seconds in zip(timed, walls)],
        "env_step_samples_per_s": samples / env_step,
        "policy_and_storage_samples_per_s": samples / (rollout - env_step),
        "rollout_fraction": rollout / wall,
        "env_step_fraction_of_rollout": env_step / rollout,
        "seconds": {"rollout": rollout, "update": update, "whole_loop": wall, "env_step": env_step,
                    "between_rollout_and_update": wall - rollout - update},
        "updates_timed": updates,
        "samples_per_update": result.samples_per_update,
        "samples_timed": samples,
        "parameters": result.parameters,
        "action_space": result.action_space,
        "env": result.env,
    }


def versions() -> dict[str, str | None]:
    """Versions of the libraries that decide the figures."""
    import mujoco

    found: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                    "numpy": np.__version__, "gymnasium": gymnasium.__version__,
                                    "mujoco": mujoco.__version__}
    for name in ("stable_baselines3", "sb3_contrib"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found


def notes(config: TrainConfig, layout: str, action_type: str, with_peer: bool) -> list[str]:
    """What differs between the sides, and how they were timed."""
    lines = [f"timing: per round each side trains {WARMUP_UPDATES} warm-up update(s), then the timed updates; "
             "rounds alternate ours, ours_continuous, recurrent_ppo; whole loop = wall clock from the first timed "
             "rollout's start to the last timed update's end",
             "ours: policies.runner.Runner + LocalBackend (as `inhand train`); rollout and update seconds are the "
             "Runner's own (rollout_fraction, samples_per_s); run folder, metrics and TensorBoard writes included",
             f"physics_limit_samples_per_s: plain mj_step (no env logic) on {default_num_threads()} threads over "
             f"{config.env.num_envs} envs of the training env config, their own randomized models and states, "
             f"random-walk targets, {PHYSICS_LIMIT_STEPS} control periods each; one measurement per round, "
             "before that round's sides; sim_seconds_per_wall_second_per_core = whole loop * control period / cores"]
    if action_type == "discrete":
        lines.append("ours trains on the configured discrete actions (categorical heads); ours_continuous is the "
                     "same learner on Box actions, the action space RecurrentPPO gets")
    if not with_peer:
        return lines + ["recurrent_ppo skipped (--no-peer)"]
    shape = ("a dense ReLU features extractor per network (share_features_extractor False) -> separate actor and "
             "critic LSTMs -> linear heads (net_arch []), the same shape as ours"
             if layout == "ours" else
             "SB3's usual shape: separate actor and critic LSTMs -> net_arch pi/vf [dense_size] ReLU -> heads")
    return lines + [
        f"recurrent_ppo network: {shape}; lstm_hidden_size {config.model.lstm_size}, shared_lstm False, "
        f"enable_critic_lstm True, dense {config.model.dense_size}",
        "recurrent_ppo sees only the 'policy' observation as a flat Box, for actor and critic: SB3 has no "
        "asymmetric critic; our critic reads the larger 'critic' observation",
        "recurrent_ppo gets no input normalization (VecNormalize would add work on its side); ours normalizes "
        "observations and value targets inside the networks",
        f"minibatches: ours splits by env into {config.ppo.num_minibatches} groups of whole sequences and "
        f"truncates BPTT to chunks of {config.ppo.chunk_len} steps; recurrent_ppo's batch_size is batch / "
        f"{config.ppo.num_minibatches} samples, its sequences run whole between minibatch and episode boundaries",
        "envs: ours steps its VecEnv (sim.vec_env_from_config); recurrent_ppo steps N single gymnasium envs in an SB3 "
        "VecEnv (DummyVecEnv for env.num_workers 0, else SubprocVecEnv with one process per env, SB3's design)",
        f"cores: both sides get the machine's {default_num_threads()}: ours in physics threads and the update's "
        "torch threads; recurrent_ppo's torch uses as many threads for inference and update (SB3 has no vector env "
        "that steps several envs per process, and 64 processes do not fit 2 cores)",
    ]


def measure(config: TrainConfig, updates: int, rounds: int, with_peer: bool, layout: str) -> dict[str, Any]:
    """All figures of `inhand bench train` as one dict."""
    if with_peer and config.env.factory != SIM_FACTORY:
        raise ConfigError(f"env.factory {config.env.factory!r}: the RecurrentPPO side needs the inhand sim "
                          f"({SIM_FACTORY}); pass --no-peer to time ours alone")
    if with_peer:
        try:
            import sb3_contrib  # noqa: F401 - fail before any side has run
        except ImportError as error:
            raise PeerMissing(PEER_INSTALL_HINT) from error
    action_type = configured_action_type(config) if config.env.factory == SIM_FACTORY else "other"
    continuous = dataclasses.replace(config, env=dataclasses.replace(config.env, factory=CONTINUOUS_FACTORY))
    load_before = os.getloadavg()
    sides: dict[str, list[SideResult]] = {"ours": [], "ours_continuous": [], "recurrent_ppo": []}
    env_config = section_env_config(config.env) if action_type != "other" else None
    cores = default_num_threads()
    limits = []
    for round_index in range(rounds):
        if env_config is not None:
            limits.append(physics_limit(env_config, config.env.num_envs, PHYSICS_LIMIT_STEPS, config.seed + round_index,
                                        cores))
        sides["ours"].append(run_ours(config, updates))
        if action_type == "discrete":
            sides["ours_continuous"].append(run_ours(continuous, updates))
        if with_peer:
            sides["recurrent_ppo"].append(run_recurrent_ppo(config, updates, layout))
    load_after = os.getloadavg()
    results = {name: figures(merge_rounds(parts)) if parts else None for name, parts in sides.items()}

    def ratio(side: str, key: str) -> float | None:
        if results[side] is None or results["recurrent_ppo"] is None:
            return None
        return results[side][key] / results["recurrent_ppo"][key]

    batch = config.runner.rollout_steps * config.env.num_envs
    whole_loop = results["ours"]["whole_loop_samples_per_s"]
    limit = float(np.mean(limits)) if limits else None
    control_dt = env_config.task.physics_timestep * env_config.task.substeps if env_config is not None else None
    return {
        "whole_loop_samples_per_s": whole_loop,
        "physics_limit_samples_per_s": limit,
        "physics_limit_fraction": whole_loop / limit if limit else None,
        "sim_seconds_per_wall_second_per_core": whole_loop * control_dt / cores if control_dt else None,
        "resident_mb_per_env": (resident_bytes_per_env(env_config, config.env.num_envs, config.seed) / 2**20
                                if env_config is not None else None),
        **results,
        "ratio_whole_loop": ratio("ours", "whole_loop_samples_per_s"),
        "ratio_rollout": ratio("ours", "rollout_samples_per_s"),
        "ratio_update": ratio("ours", "update_samples_per_s"),
        "ratio_whole_loop_continuous": ratio("ours_continuous", "whole_loop_samples_per_s"),
        "target_ratio_whole_loop": 4.0,
        "target_physics_limit_fraction": 0.5,
        "config": {
            "num_envs": config.env.num_envs, "num_workers": config.env.num_workers,
            "rollout_steps": config.runner.rollout_steps, "batch_samples": batch,
            "num_minibatches": config.ppo.num_minibatches, "minibatch_samples": batch // config.ppo.num_minibatches,
            "epochs": config.ppo.epochs, "chunk_len": config.ppo.chunk_len, "dense_size": config.model.dense_size,
            "lstm_size": config.model.lstm_size, "memory": config.model.memory,
            "torch_threads": config.runner.torch_threads, "device": config.runner.device,
            "env_factory": config.env.factory, "action_type": action_type,
            "goal_mode": continuous_env_config(config.env).task.goal_mode if action_type != "other" else None,
            "warmup_updates_per_round": WARMUP_UPDATES, "timed_updates_per_round": updates, "rounds": rounds,
            "peer_layout": layout if with_peer else None,
        },
        "notes": notes(config, layout, action_type, with_peer),
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
    }


def main(argv: list[str]) -> int:
    """Print the training benchmark (ours vs RecurrentPPO) as one JSON object."""
    parser = argparse.ArgumentParser(prog="inhand bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help=f"train YAML (default {DEFAULT_CONFIG})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set env.num_envs=8 (repeatable)")
    parser.add_argument("--updates", type=int, default=3, help="timed updates per side and round (after 1 warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of all sides")
    parser.add_argument("--peer-layout", choices=PEER_LAYOUTS, default="ours",
                        help="RecurrentPPO network: ours (dense -> LSTM -> heads) or sb3 (LSTM -> dense -> heads)")
    parser.add_argument("--no-peer", action="store_true", help="time our learner only (no sb3-contrib needed)")
    args = parser.parse_args(argv)
    try:
        if args.updates < 1 or args.rounds < 1:
            raise ConfigError(f"--updates ({args.updates}) and --rounds ({args.rounds}) must be >= 1")
        config = load_train_config(args.config or default_config(), parse_overrides(args.overrides))
        result = measure(config, args.updates, args.rounds, not args.no_peer, args.peer_layout)
    except (ConfigError, PeerMissing) as error:
        print(f"inhand bench train: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
