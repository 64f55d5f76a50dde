"""`inhand bench sim`: env throughput against raw mj_step on the same scene, measured side by side.

overhead_ratio = (env time per physics step) / (mj_step time per physics step), where the mj_step time is
that of the very mj_step calls the env made (timed by wrapping mujoco.mj_step), so both sides simulate the
same states; every physics step counts, reset settling included, and all env time (resets, randomization,
observations) is charged to them. raw_physics_steps_per_s is a separate plain loop on the nominal scene
(a random walk of targets, the cube put back on the palm when it falls). Loops run in alternating rounds
so load from elsewhere on the machine hits all alike.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np

from sim.batch import ReorientBatch
from sim.config import EnvConfig, load_env_config
from sim.scene import load_model
from sim.vec_env import vec_env_from_config


def raw_physics(config: EnvConfig, steps: int, seed: int):
    """A timed closure of `steps` control periods of plain mj_step, and the physics steps it takes."""
    batch = ReorientBatch(config.with_options(randomize=False), 1, seed=seed, autoreset=False)
    batch.reset(seed)
    model, data = batch.models[0], batch.datas[0]
    start_state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(model, data, start_state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    rng = np.random.default_rng(seed)
    low, high = model.actuator_ctrlrange.T
    targets = np.empty((steps, model.nu))
    targets[0] = data.ctrl
    for step in range(1, steps):
        walk = targets[step - 1] + rng.uniform(-0.15, 0.15, model.nu) * (high - low)
        targets[step] = np.clip(walk, low, high)
    cube_z = batch.index.cube_qpos + 2
    drop_height = config.task.drop_height_m
    nstep = config.task.substeps

    def run() -> float:
        begin = time.perf_counter()
        for target in targets:
            data.ctrl[:] = target
            mujoco.mj_step(model, data, nstep)
            if data.qpos[cube_z] < drop_height:
                mujoco.mj_setState(model, data, start_state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        return time.perf_counter() - begin

    return run, steps * nstep


class StepTimer:
    """Wraps mujoco.mj_step to add up the time spent inside it and the physics steps it takes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self.original = mujoco.mj_step

    def __enter__(self) -> StepTimer:
        original = self.original

        def timed_step(model, data, nstep=1):
            begin = time.perf_counter()
            original(model, data, nstep)
            self.seconds += time.perf_counter() - begin
            self.steps += nstep

        mujoco.mj_step = timed_step
        return self

    def __exit__(self, *exc_info: object) -> None:
        mujoco.mj_step = self.original


def env_loop(config: EnvConfig, num_envs: int, steps: int, seed: int):
    """A timed closure of `steps` random-action steps of a batch -> (seconds, mj_step seconds, physics steps)."""
    batch = ReorientBatch(config, num_envs, seed=seed, autoreset=True)
    batch.reset(seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, config.task.action_bins, (steps, num_envs, batch.n_actuators))

    def run() -> tuple[float, float, int]:
        with StepTimer() as timer:
            begin = time.perf_counter()
            for action in actions:
                batch.step(action)
            elapsed = time.perf_counter() - begin
        return elapsed, timer.seconds, timer.steps

    return run


def gym_env_loop(config: EnvConfig, steps: int, seed: int):
    """The same for the registered gymnasium env (a batch of one, behind gymnasium's wrappers)."""
    import gymnasium

    import sim  # noqa: F401 - registers the env ids

    env = gymnasium.make("inhand/Reorient-v0", config=config)
    env.reset(seed=seed)
    n_actuators = env.unwrapped.batch.n_actuators
    actions = np.random.default_rng(seed).integers(0, config.task.action_bins, (steps, n_actuators))

    def run() -> tuple[float, float, int]:
        with StepTimer() as timer:
            begin = time.perf_counter()
            for action in actions:
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset()
            elapsed = time.perf_counter() - begin
        return elapsed, timer.seconds, timer.steps

    return run


def physics_limit(config: EnvConfig, num_envs: int, steps: int, seed: int, threads: int) -> float:
    """Control steps per second of plain mj_step on `threads` threads over a randomized batch's own models and
    states (random-walk targets, a fallen cube put back): what the machine's cores can simulate of this scene."""
    batch = ReorientBatch(config, num_envs, seed=seed, autoreset=True)
    batch.reset(seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        batch.step(rng.integers(0, config.task.action_bins, (num_envs, batch.n_actuators)))
    kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
    starts = []
    for model, data in zip(batch.models, batch.datas):
        state = np.empty(mujoco.mj_stateSize(model, kind))
        mujoco.mj_getState(model, data, state, kind)
        starts.append(state)
    low, high = batch.ctrl_range.T
    targets = np.empty((steps, num_envs, batch.n_actuators))
    targets[0] = [data.ctrl for data in batch.datas]
    for step in range(1, steps):
        targets[step] = np.clip(targets[step - 1] + rng.uniform(-0.15, 0.15, targets[0].shape) * (high - low), low, high)
    cube_z = batch.index.cube_qpos + 2
    drop_height, nstep = config.task.drop_height_m, config.task.substeps

    def work(rows: range) -> None:
        for step in range(steps):
            for row in rows:
                model, data = batch.models[row], batch.datas[row]
                data.ctrl[:] = targets[step, row]
                mujoco.mj_step(model, data, nstep)
                if data.qpos[cube_z] < drop_height:
                    mujoco.mj_setState(model, data, starts[row], kind)

    slices = [range(first, num_envs, threads) for first in range(threads)]
    begin = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, slices))
    elapsed = time.perf_counter() - begin
    batch.close()
    return num_envs * steps / elapsed


def resident_bytes_per_env(config: EnvConfig, num_envs: int, seed: int) -> float:
    """Growth of a fresh process's resident memory per env when a batch of `num_envs` is built and reset.

    Fresh, because in a process that has built and freed envs before, the allocator hands the new batch memory
    it already holds and resident memory need not grow at all."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_resident_growth_per_env, (config, num_envs, seed))


def _resident_growth_per_env(config: EnvConfig, num_envs: int, seed: int) -> float:
    def resident() -> int:
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    load_model()  # the scene's one-time cost (mesh files, compiler) is no env's
    before = resident()
    batch = ReorientBatch(config, num_envs, seed=seed)
    batch.reset(seed)
    grown = resident() - before
    batch.close()
    return grown / num_envs


def _raw_steps(steps: int) -> float:
    model = load_model()
    data = mujoco.MjData(model)
    begin = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data, 10)
    return time.perf_counter() - begin


def machine_process_scaling(steps: int, rounds: int) -> float:
    """Throughput of plain mj_step in 2 processes over 1: the ceiling this machine puts on any 2-worker speedup."""
    one = two = 0.0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_raw_steps, [10, 10])
        for _ in range(rounds):
            one += pool.map(_raw_steps, [steps])[0]
            two += max(pool.map(_raw_steps, [steps, steps]))
    return 2.0 * one / two


# (worker processes, physics threads) of the vectorized layouts timed side by side
VEC_LAYOUTS = {"1_thread": (0, 1), "2_threads": (0, 2), "2_workers": (2, 1)}


def vec_throughputs(config: EnvConfig, num_envs: int, steps: int, rounds: int, seed: int) -> dict[str, float]:
    """Env steps per second of each VEC_LAYOUTS entry, timed in alternating rounds."""
    envs = {name: vec_env_from_config(config, num_envs, workers, seed, num_threads=threads)
            for name, (workers, threads) in VEC_LAYOUTS.items()}
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, config.task.action_bins, (steps, num_envs, 20))
    seconds = dict.fromkeys(envs, 0.0)
    try:
        for env in envs.values():
            env.reset(seed)
            env.step(actions[0])
        for _ in range(rounds):
            for workers, env in envs.items():
                begin = time.perf_counter()
                for action in actions:
                    env.step(action)
                seconds[workers] += time.perf_counter() - begin
    finally:
        for env in envs.values():
            env.close()
    return {name: rounds * steps * num_envs / elapsed for name, elapsed in seconds.items()}


def render_ms_per_camera(size: int, repeats: int, seed: int) -> float:
    """Milliseconds per 200x200 (or `size`) RGB render of one of the three cameras."""
    from sim.render import CameraRig

    batch = ReorientBatch(EnvConfig(), 1, seed=seed, autoreset=False)
    batch.reset(seed)
    rig = CameraRig(batch.models[0], size, size)
    rig.render(batch.datas[0])
    begin = time.perf_counter()
    for _ in range(repeats):
        rig.render(batch.datas[0])
    elapsed = time.perf_counter() - begin
    rig.close()
    return 1000.0 * elapsed / (repeats * len(rig.cameras))


def measure(config: EnvConfig, num_envs: int, rounds: int, steps: int, seed: int, vec_envs: int) -> dict:
    """All figures of `inhand bench sim` as one dict."""
    raw, raw_physics_steps = raw_physics(config, steps, seed)
    loops = {
        "randomized": env_loop(config, num_envs, steps, seed),
        "plain": env_loop(config.with_options(randomize=False), num_envs, steps, seed),
        "gym_single": gym_env_loop(config, steps, seed),
    }
    raw_time = 0.0
    totals = {name: np.zeros(3) for name in loops}
    for _ in range(rounds):
        raw_time += raw()
        for name, loop in loops.items():
            totals[name] += loop()
    raw_step_s = raw_time / (rounds * raw_physics_steps)
    env_steps = rounds * steps

    def per_env_step(name: str, envs: int) -> float:
        return env_steps * envs / totals[name][0]

    def overhead(name: str) -> float:
        return totals[name][0] / totals[name][1]

    randomized_physics_s = totals["randomized"][1] / totals["randomized"][2]
    control_dt = config.task.physics_timestep * config.task.substeps
    vec = vec_throughputs(config, vec_envs, steps, rounds, seed)
    one_process, two_threads, two_workers = vec["1_thread"], vec["2_threads"], vec["2_workers"]
    return {
        "num_envs_per_batch": num_envs,
        "physics_timestep_s": config.task.physics_timestep,
        "substeps": config.task.substeps,
        "env_steps_per_s_randomization_on": per_env_step("randomized", num_envs),
        "env_steps_per_s_randomization_off": per_env_step("plain", num_envs),
        "overhead_ratio": overhead("randomized"),
        "overhead_ratio_randomization_off": overhead("plain"),
        "overhead_ratio_single_gym_env": overhead("gym_single"),
        "gym_single_env_steps_per_s": per_env_step("gym_single", 1),
        "sim_seconds_per_wall_second": per_env_step("randomized", num_envs) * control_dt,
        "raw_physics_steps_per_s": 1.0 / raw_step_s,
        "env_physics_steps_per_s_inside_mj_step": 1.0 / randomized_physics_s,
        "raw_sim_seconds_per_wall_second": control_dt / config.task.substeps / raw_step_s,
        "vec_envs": vec_envs,
        "vec_steps_per_s_1_process": one_process,
        "vec_steps_per_s_2_threads": two_threads,
        "vec_steps_per_s_2_workers": two_workers,
        "thread_speedup_2_threads": two_threads / one_process,
        "vec_speedup_2_workers": two_workers / one_process,
        "machine_2_process_scaling_raw_mj_step": machine_process_scaling(steps * 10, rounds),
        "render_ms_per_camera_200x200": render_ms_per_camera(200, 30, seed),
        "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
        "mujoco_version": mujoco.__version__,
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str]) -> int:
    """Print the simulation benchmark as JSON."""
    parser = argparse.ArgumentParser(prog="inhand bench sim", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="env YAML (default config/env.yaml)")
    parser.add_argument("--num-envs", type=int, default=32, help="envs per batch for the overhead figures")
    parser.add_argument("--vec-envs", type=int, default=32, help="envs for the 1-process vs 2-worker figures (split evenly)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="control steps per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_env_config(args.config)
    print(json.dumps(measure(config, args.num_envs, args.rounds, args.steps, args.seed, args.vec_envs), indent=2))
    return 0
