"""Ray backend: rollout actors (each owning a VecEnv) roll out with the newest parameters; the driver learns.

Each update the driver publishes the actor and critic weights once (ray.put), every worker rolls out its share of
the envs with them and returns its storage and finished episodes; the driver joins them and runs the PPO update.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import ray
import torch

from policies.config import TrainConfig, config_from_mapping
from policies.models import EnvSpec
from policies.ppo import PPO, build_ppo
from policies.ray_address import probe_address
from policies.rollout import Episodes, RolloutWorker, join_episodes
from policies.storage import RolloutStorage
from policies.env_factory import make_env
from sim.adr import AdrTable
from sim.config_loading import ConfigError, to_mapping


@ray.remote
class RolloutActor:
    """A Ray actor holding one VecEnv and CPU copies of the actor and critic."""

    def __init__(self, config_mapping: dict[str, Any], num_envs: int, seed: int) -> None:
        config = config_from_mapping(config_mapping, "<ray driver config>")
        torch.set_num_threads(1)
        if config.env.num_threads is None:
            # an actor may use the CPUs Ray reserved for it, not every core of its node
            threads = max(1, round(config.ray.cpus_per_worker))
            config = dataclasses.replace(config, env=dataclasses.replace(config.env, num_threads=threads))
        self.env = make_env(config.env, num_envs, seed)
        self.spec = EnvSpec.from_env(self.env)
        self.ppo = build_ppo(self.spec, config.model, config.ppo, seed, "cpu")
        self.worker = RolloutWorker(self.env, self.ppo, config.runner.rollout_steps, config.model.lstm_size)

    def env_spec(self) -> dict[str, Any]:
        """The VecEnv's spec as plain data."""
        return self.spec.to_mapping()

    def adr_table(self) -> AdrTable | None:
        """The boundaries automatic domain randomization moves in this actor's envs (None: fixed ranges)."""
        return getattr(self.env, "adr_table", None)

    def set_adr_values(self, values: np.ndarray) -> None:
        """ADR boundary values for the episodes this actor's envs start from now on."""
        self.env.set_adr_values(values)

    def restart(self, seed: int) -> None:
        """Reset the envs with `seed`, zero LSTM states."""
        self.worker.restart(seed)

    def collect(self, weights: dict[str, dict[str, torch.Tensor]]) -> tuple[dict[str, Any], Episodes]:
        """Load the learner's weights, roll out, return the storage arrays and the finished episodes."""
        self.ppo.actor.load_state_dict(weights["actor"])
        self.ppo.critic.load_state_dict(weights["critic"])
        episodes = self.worker.collect()
        return self.ppo.storage.to_arrays(), episodes

    def close(self) -> None:
        """Close the VecEnv."""
        self.env.close()


class RayBackend:
    """ray.num_workers rollout actors sharing env.num_envs; joins a cluster at `address` or starts a local Ray."""

    def __init__(self, config: TrainConfig, address: str | None = None) -> None:
        workers = config.ray.num_workers
        if config.env.num_envs % workers:
            raise ConfigError(f"env.num_envs ({config.env.num_envs}) must be a multiple of ray.num_workers "
                              f"({workers}) so every rollout actor has the same number of envs")
        self.config = config
        self.started_ray = False
        if not ray.is_initialized():
            source = "--address" if address else "ray.address"
            address = address or config.ray.address
            if address:
                probe_address(address, source)  # ray.init retries an unreachable address for minutes
                ray.init(address=address)
            else:
                ray.init(num_cpus=config.ray.local_num_cpus, include_dashboard=False)
            self.started_ray = True
        mapping = to_mapping(config)
        per_worker = config.env.num_envs // workers
        actor_class = RolloutActor.options(num_cpus=config.ray.cpus_per_worker)
        self.workers = [actor_class.remote(mapping, per_worker, config.seed + index) for index in range(workers)]
        specs = ray.get([worker.env_spec.remote() for worker in self.workers])
        if any(spec != specs[0] for spec in specs):
            raise ValueError(f"rollout actors report different env specs: {specs}")
        self.spec = EnvSpec(**specs[0])
        self.adr_table = ray.get(self.workers[0].adr_table.remote())
        self.num_streams = workers
        self.ppo: PPO | None = None

    def set_adr_values(self, values: np.ndarray) -> None:
        """Send every actor the ADR boundary values."""
        ray.get([worker.set_adr_values.remote(values) for worker in self.workers])

    def attach(self, ppo: PPO) -> None:
        """Publish this learner's weights to the workers at every collect."""
        self.ppo = ppo

    def restart(self, seeds: list[int]) -> None:
        """Reset each worker's envs with its own seed."""
        ray.get([worker.restart.remote(seed) for worker, seed in zip(self.workers, seeds)])

    def collect(self) -> tuple[RolloutStorage, Episodes]:
        """All workers roll out with the current weights; their storages joined along the env axis."""
        if self.ppo is None:
            raise RuntimeError("RayBackend used before attach(ppo)")
        weights = ray.put({"actor": _cpu(self.ppo.actor.state_dict()), "critic": _cpu(self.ppo.critic.state_dict())})
        results = ray.get([worker.collect.remote(weights) for worker in self.workers])
        storage = RolloutStorage.from_arrays([arrays for arrays, _ in results], self.spec, self.config.model.lstm_size,
                                             self.config.ppo.chunk_len, self.ppo.device)
        return storage, join_episodes([episodes for _, episodes in results])

    def close(self) -> None:
        """Close the workers' envs, end the actors, and stop Ray if this backend started it."""
        ray.get([worker.close.remote() for worker in self.workers])
        for worker in self.workers:
            ray.kill(worker)
        if self.started_ray:
            ray.shutdown()


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu() for name, tensor in state.items()}
