"""Unmodeled effects and observation noise (Dactyl tables 7, 8), vectorized over a batch of envs.

`EpisodeEffects` holds what is drawn once per episode; the functions below apply the per-step part. Each
takes the batch's generator, so a seed gives the same episode.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sim import rotations
from sim.config import Randomization
from sim.randomization import log_uniform, uniform

N_FINGERTIPS = 5


@dataclass
class EpisodeEffects:
    """Per-episode draws for N envs; rows of finished envs are redrawn at reset."""

    action_bias: np.ndarray  # (N, A) correlated additive action noise
    delayed: np.ndarray  # (N, A) bool: the actuator applies last step's target
    timing_rate: np.ndarray  # (N,) lambda of the exponential control-period jitter, 1/s; 0 = off
    backlash_width: np.ndarray  # (N, A) rad
    force_probability: np.ndarray  # (N,) chance per step of a new random force on the cube
    fingertip_bias: np.ndarray  # (N, 5, 3) m
    object_position_bias: np.ndarray  # (N, 3) m
    object_rotation_bias: np.ndarray  # (N, 4) quaternion

    @classmethod
    def draw(cls, rng: np.random.Generator, count: int, n_actuators: int, config: Randomization) -> EpisodeEffects:
        """Draw the per-episode effects of `count` envs."""
        noise = config.observation_noise
        off = np.zeros
        return cls(
            action_bias=rng.normal(0.0, config.action_noise.correlated_std, (count, n_actuators))
            if config.action_noise.enabled
            else off((count, n_actuators)),
            delayed=rng.random((count, n_actuators)) < config.action_delay.probability
            if config.action_delay.enabled
            else off((count, n_actuators), bool),
            timing_rate=uniform(rng, config.control_timing.rate_range, count)
            if config.control_timing.enabled
            else off(count),
            backlash_width=rng.uniform(0.0, config.backlash.max_width_rad, (count, n_actuators))
            if config.backlash.enabled
            else off((count, n_actuators)),
            force_probability=log_uniform(rng, config.random_forces.probability_range, count)
            if config.random_forces.enabled
            else off(count),
            fingertip_bias=rng.normal(0.0, noise.fingertip_episode_std_m, (count, N_FINGERTIPS, 3))
            if noise.enabled
            else off((count, N_FINGERTIPS, 3)),
            object_position_bias=rng.normal(0.0, noise.object_position_episode_std_m, (count, 3))
            if noise.enabled
            else off((count, 3)),
            object_rotation_bias=random_small_rotations(rng, count, noise.object_rotation_episode_std_rad)
            if noise.enabled
            else np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)),
        )

    def assign(self, rows: np.ndarray, other: EpisodeEffects) -> None:
        """Overwrite the given rows with `other`'s draws."""
        for field in fields(self):
            getattr(self, field.name)[rows] = getattr(other, field.name)


def random_small_rotations(rng: np.random.Generator, count: int, angle_std: float) -> np.ndarray:
    """Rotations (count, 4) about random axes by N(0, angle_std^2) angles."""
    return rotations.from_axis_angle(rotations.random_axis(rng, count), rng.normal(0.0, angle_std, count))


def noisy_actions(
    actions: np.ndarray, bias: np.ndarray, rng: np.random.Generator, config: Randomization
) -> np.ndarray:
    """Normalized actions (N, A) with multiplicative, per-step additive and per-episode noise, clipped to [-1, 1]."""
    noise = config.action_noise
    if not noise.enabled:
        return actions
    scale = 1.0 + rng.normal(0.0, noise.multiplicative_std, actions.shape)
    noisy = actions * scale + rng.normal(0.0, noise.additive_std, actions.shape) + bias
    return np.clip(noisy, -1.0, 1.0)


def apply_backlash(previous: np.ndarray, commanded: np.ndarray, width: np.ndarray) -> np.ndarray:
    """The applied target moves only once the command leaves the dead band of `width` around it."""
    half = 0.5 * width
    return np.clip(previous, commanded - half, commanded + half)


def control_periods(nominal: float, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """This step's control period per env: nominal plus Exp(rate) seconds where rate > 0."""
    jitter = np.zeros_like(rates)
    on = rates > 0
    jitter[on] = rng.exponential(1.0 / rates[on])
    return nominal + jitter


def update_forces(
    forces: np.ndarray,
    probability: np.ndarray,
    masses: np.ndarray,
    rng: np.random.Generator,
    config: Randomization,
) -> np.ndarray:
    """Forces (N, 3) on the cube: decayed, and with `probability` replaced by N(0, (accel * mass)^2) per axis."""
    pushes = config.random_forces
    if not pushes.enabled:
        return forces
    forces = forces * pushes.decay
    new = rng.random(len(forces)) < probability
    if new.any():
        forces[new] = rng.normal(0.0, 1.0, (int(new.sum()), 3)) * (pushes.acceleration_std * masses[new, None])
    return forces


def freeze_markers(
    frozen_steps: np.ndarray, rng: np.random.Generator, config: Randomization, control_dt: float
) -> np.ndarray:
    """Remaining frozen steps per marker (N, 5) after this step: Poisson starts of fixed-length freezes."""
    freeze = config.marker_freeze
    if not freeze.enabled:
        return frozen_steps
    remaining = np.maximum(frozen_steps - 1, 0)
    start_probability = 1.0 - np.exp(-freeze.rate_hz * control_dt)
    starts = (remaining == 0) & (rng.random(remaining.shape) < start_probability)
    remaining[starts] = int(np.ceil(freeze.duration_s / control_dt))
    return remaining


def noisy_fingertips(
    true: np.ndarray, reported_before: np.ndarray, frozen: np.ndarray, bias: np.ndarray,
    rng: np.random.Generator, config: Randomization,
) -> np.ndarray:
    """Reported fingertip positions (N, 5, 3): frozen markers repeat their last report, others get noise."""
    noise = config.observation_noise
    reported = true + bias
    if noise.enabled:
        reported = reported + rng.normal(0.0, noise.fingertip_step_std_m, true.shape)
    return np.where(frozen[..., None] > 0, reported_before, reported)


def noisy_object_pose(
    position: np.ndarray, quaternion: np.ndarray, effects: EpisodeEffects, rng: np.random.Generator,
    config: Randomization,
) -> tuple[np.ndarray, np.ndarray]:
    """Reported cube position (N, 3) and orientation (N, 4) with per-episode and per-step noise."""
    noise = config.observation_noise
    if not noise.enabled:
        return position, quaternion
    count = len(position)
    position = position + effects.object_position_bias + rng.normal(0.0, noise.object_position_step_std_m, (count, 3))
    step_rotation = random_small_rotations(rng, count, noise.object_rotation_step_std_rad)
    quaternion = rotations.multiply(step_rotation, rotations.multiply(effects.object_rotation_bias, quaternion))
    return position, quaternion
