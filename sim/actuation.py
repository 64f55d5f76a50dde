"""From targets to physics, one control period at a time: the one command path of the env, the sim driver and
replay's re-simulation.

Targets come either from the policy's normalized actions (the env: action noise, relative targets, EMA) or from
a controller's commanded targets (the sim driver's hand/command after its safety filter). Either way the same
unmodeled effects follow (Dactyl table 8): each actuator's one-period delay, backlash, random pushes on the cube,
a control period stretched by timing jitter, then the physics. Every effect follows the env config's switches and
the episode's draws (EpisodeEffects), so a driver built on the env config is the hand the policy trained on, and
the same config with the effects switched off is a clean re-simulation.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import mujoco
import numpy as np

from sim import perturbations, task
from sim.config import EnvConfig
from sim.perturbations import EpisodeEffects
from sim.rows import RowPool


class Actuation:
    """The command path of N envs: its state (targets, delayed and applied targets, pushes) and its steps."""

    def __init__(self, config: EnvConfig, models: Sequence[mujoco.MjModel], datas: Sequence[mujoco.MjData],
                 cube_body: int, rows: RowPool, after_step: Callable[[int], None]) -> None:
        base = models[0]
        if set(base.actuator_trntype) != {int(mujoco.mjtTrn.mjTRN_JOINT)} or not np.all(base.actuator_gear[:, 0] == 1):
            raise ValueError("every actuator must drive one joint with gear 1: targets are read from joint positions")
        self.config = config
        self.models, self.datas = models, datas
        self.cube_body = cube_body
        self.rows = rows
        self.after_step = after_step  # called with each env's row once its physics has advanced
        self.actuated_qpos = base.jnt_qposadr[base.actuator_trnid[:, 0]]
        self.ctrl_range = base.actuator_ctrlrange.copy()
        self.control_dt = config.task.physics_timestep * config.task.substeps
        n, a = len(models), base.nu
        self.targets = np.zeros((n, a))  # this period's targets (EMA-smoothed), actuator units
        self.previous_targets = np.zeros((n, a))  # last period's: what a delayed actuator applies
        self.applied = np.zeros((n, a))  # what the actuators apply, after delay and backlash
        self.commands = np.zeros((n, a))  # the last commanded targets a controller sent (set_commands)
        self.forces = np.zeros((n, 3))  # random push on each cube, N

    def reset_rows(self, rows: np.ndarray | list[int], ctrl: np.ndarray) -> None:
        """Envs in `rows` start holding `ctrl` (len(rows), A), with no push on their cubes."""
        self.targets[rows] = self.previous_targets[rows] = self.applied[rows] = self.commands[rows] = ctrl
        self.forces[rows] = 0.0

    def set_actions(self, normalized: np.ndarray, actuated_positions: np.ndarray, effects: EpisodeEffects,
                    rng: np.random.Generator) -> None:
        """This period's targets from the policy's normalized actions (N, A) in [-1, 1], with the action noise."""
        noisy = perturbations.noisy_actions(normalized, effects, rng, self.config.randomization)
        self.targets = task.smoothed_targets(noisy, actuated_positions, self.targets, self.ctrl_range, self.config.task)

    def set_commands(self, commands: np.ndarray, actuated_positions: np.ndarray, effects: EpisodeEffects,
                     rng: np.random.Generator) -> None:
        """This period's targets from commanded targets (N, A) (actuator units, clipped to the control range).

        The env's action noise acts on actions, so with it on the command is read back as the action a policy
        with this task's EMA and action scale sent (task.implied_actions), noised as in the env, and smoothed
        again: for a policy's commands the targets are then exactly the env's noisy ones. The part of an action
        beyond [-1, 1] (a command no single action gives) passes through, so the hand still follows it.
        """
        commands = np.clip(commands, self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        randomization = self.config.randomization
        if randomization.action_noise.enabled:
            actions = task.implied_actions(commands, self.commands, actuated_positions, self.ctrl_range,
                                           self.config.task)
            within = np.clip(actions, -1.0, 1.0)
            noisy = perturbations.noisy_actions(within, effects, rng, randomization) + (actions - within)
            self.targets = task.smoothed_targets(noisy, actuated_positions, self.targets, self.ctrl_range,
                                                 self.config.task)
        else:
            self.targets = commands
        self.commands = commands

    def advance(self, effects: EpisodeEffects, rng: np.random.Generator, cube_masses: np.ndarray) -> None:
        """One control period: delay, backlash, pushes, timing jitter, then the physics of every env."""
        randomization = self.config.randomization
        commanded = np.where(effects.delayed, self.previous_targets, self.targets)
        self.previous_targets = self.targets
        self.applied = perturbations.apply_backlash(self.applied, commanded, effects.backlash_width)
        self.forces = perturbations.update_forces(self.forces, effects, cube_masses, rng, randomization)
        substep = perturbations.control_periods(self.control_dt, effects.timing_rate, rng) / self.config.task.substeps
        self.rows.run(lambda rows: self._step_rows(rows, substep), range(len(self.models)))

    def _step_rows(self, rows: Iterator[int], substep: np.ndarray) -> None:
        nstep = self.config.task.substeps
        for row in rows:
            model, data = self.models[row], self.datas[row]
            data.ctrl[:] = self.applied[row]
            data.xfrc_applied[self.cube_body, :3] = self.forces[row]
            model.opt.timestep = substep[row]
            mujoco.mj_step(model, data, nstep)
            self.after_step(row)
