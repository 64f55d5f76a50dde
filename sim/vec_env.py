"""Vectorized envs for learners: one batch in this process, or several batches in worker processes.

Both implement the VecEnv contract of sim.contract (auto-reset, arrays over all envs, the info keys it names).
"""
from __future__ import annotations

import multiprocessing
import signal
import traceback
from multiprocessing.connection import Connection

import mujoco
import numpy as np

from sim.adr import adr_table
from sim.batch import OBSERVATION_SIZES, ReorientBatch
from sim.config import EnvConfig
from sim.contract import StepReturn, VecEnv
from sim.cores import default_num_threads
from sim.env import action_space


class BatchVecEnv(VecEnv):
    """All envs stepped in this process by one ReorientBatch."""

    observation_sizes = OBSERVATION_SIZES

    def __init__(self, config: EnvConfig, num_envs: int, seed: int = 0, num_threads: int = 1):
        # seeded like worker 0 of ProcessVecEnv, so one worker reproduces this backend exactly
        self.batch = ReorientBatch(config, num_envs, seed=_worker_seed(seed, 0), autoreset=True,
                                   num_threads=num_threads)
        self.num_envs = num_envs
        self.single_action_space = action_space(config, self.batch.n_actuators)
        self.adr_table = self.batch.adr_table
        self._renderer: mujoco.Renderer | None = None

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset every env."""
        return self.batch.reset(None if seed is None else _worker_seed(seed, 0))

    def step(self, actions: np.ndarray) -> StepReturn:
        """Step every env."""
        result = self.batch.step(actions)
        return result.observation, result.reward, result.terminated, result.truncated, result.info

    def set_adr_values(self, values: np.ndarray) -> None:
        """ADR boundary values for the batch."""
        self.batch.set_adr_values(values)

    def render(self, env_index: int, camera: str = "front", size: int = 320) -> np.ndarray:
        """An RGB frame (size, size, 3) of one env, goal marker included (for evaluation videos)."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.batch.models[env_index], size, size)
        self._renderer.update_scene(self.batch.datas[env_index], camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        """Stop the physics threads; free the renderer, if one was made."""
        self.batch.close()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _worker(connection: Connection, config: EnvConfig, num_envs: int, seed: int) -> None:
    # the parent owns Ctrl-C and shuts workers down through the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        batch = ReorientBatch(config, num_envs, seed=seed, autoreset=True)
        connection.send(("ready", batch.n_actuators))
        while True:
            command, argument = connection.recv()
            if command == "step":
                result = batch.step(argument)
                connection.send(
                    ("ok", (result.observation, result.reward, result.terminated, result.truncated, result.info))
                )
            elif command == "reset":
                connection.send(("ok", batch.reset(argument)))
            elif command == "adr":
                batch.set_adr_values(argument)
                connection.send(("ok", None))
            elif command == "close":
                connection.send(("ok", None))
                return
    except (EOFError, BrokenPipeError):
        return
    except Exception:  # noqa: BLE001 - the parent re-raises it with the worker's traceback
        connection.send(("error", traceback.format_exc()))


class ProcessVecEnv(VecEnv):
    """Envs split over worker processes, each stepping its share as one batch (one pipe trip per step)."""

    observation_sizes = OBSERVATION_SIZES

    def __init__(
        self, config: EnvConfig, num_envs: int, num_workers: int, seed: int = 0, start_method: str = "spawn"
    ):
        if not 1 <= num_workers <= num_envs:
            raise ValueError(f"num_workers must be in [1, num_envs={num_envs}], got {num_workers}")
        # spawn, not fork: a child forked after the parent rendered with EGL hangs at its first render
        context = multiprocessing.get_context(start_method)
        self.num_envs = num_envs
        self.shares = [len(part) for part in np.array_split(np.arange(num_envs), num_workers)]
        self.splits = np.cumsum(self.shares)[:-1]
        self.connections: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for worker, share in enumerate(self.shares):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker, args=(child, config, share, _worker_seed(seed, worker)), daemon=True
            )
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        n_actuators = {self._receive(connection) for connection in self.connections}.pop()
        self.single_action_space = action_space(config, n_actuators)
        self.adr_table = adr_table(config)

    def _receive(self, connection: Connection):
        try:
            status, payload = connection.recv()
        except EOFError:
            self.close()
            raise RuntimeError("a vec env worker process died") from None
        if status == "error":
            self.close()
            raise RuntimeError(f"a vec env worker failed:\n{payload}")
        return payload

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset every env in every worker."""
        for worker, connection in enumerate(self.connections):
            connection.send(("reset", None if seed is None else _worker_seed(seed, worker)))
        parts = [self._receive(connection) for connection in self.connections]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def set_adr_values(self, values: np.ndarray) -> None:
        """Send every worker the ADR boundary values."""
        for connection in self.connections:
            connection.send(("adr", np.asarray(values, dtype=float)))
        for connection in self.connections:
            self._receive(connection)

    def step(self, actions: np.ndarray) -> StepReturn:
        """Send each worker its share of the actions, then gather all results."""
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected actions for {self.num_envs} envs, got {len(actions)}")
        for connection, part in zip(self.connections, np.split(actions, self.splits)):
            connection.send(("step", part))
        parts = [self._receive(connection) for connection in self.connections]
        observation = {name: np.concatenate([part[0][name] for part in parts]) for name in parts[0][0]}
        reward, terminated, truncated = (np.concatenate([part[i] for part in parts]) for i in (1, 2, 3))
        info = {name: np.concatenate([part[4][name] for part in parts]) for name in parts[0][4]}
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        """Ask workers to stop, then make sure they have."""
        for connection in self.connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.connections, self.processes = [], []


def _worker_seed(seed: int, worker: int) -> int:
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def vec_env_from_config(config: EnvConfig, num_envs: int, num_workers: int = 0, seed: int = 0,
                        num_threads: int | None = None) -> VecEnv:
    """num_workers=0 steps all envs in this process on num_threads physics threads (None: one per core);
    otherwise they are split over that many single-threaded processes."""
    if num_workers == 0:
        return BatchVecEnv(config, num_envs, seed, default_num_threads() if num_threads is None else num_threads)
    return ProcessVecEnv(config, num_envs, num_workers, seed)
