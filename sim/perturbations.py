"""Unmodeled effects and observation noise (Dactyl tables 7, 8), vectorized over a batch of envs.

`EpisodeEffects` holds what is drawn once per episode, the magnitudes of the per-step noise included, so every env
of a batch may run with its own ranges (automatic domain randomization gives each env its own); the functions
below apply the per-step part. Each takes the batch's generator, so a seed gives the same episode.
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
    # per-step noise magnitudes of each env (0 where the effect is off)
    action_additive_std: np.ndarray  # (N,) normalized action units
    action_multiplicative_std: np.ndarray  # (N,)
    force_acceleration_std: np.ndarray  # (N,) m/s^2
    freeze_rate_hz: np.ndarray  # (N,) per marker
    fingertip_step_std: np.ndarray  # (N,) m
    object_position_step_std: np.ndarray  # (N,) m
    object_rotation_step_std: np.ndarray  # (N,) rad

    @classmethod
    def draw(cls, rng: np.random.Generator, count: int, n_actuators: int, config: Randomization) -> EpisodeEffects:
        """Draw the per-episode effects of `count` envs."""
        noise = config.observation_noise
        off = np.zeros

        def each(enabled: bool, value: float) -> np.ndarray:
            return np.full(count, value if enabled else 0.0)

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
            action_additive_std=each(config.action_noise.enabled, config.action_noise.additive_std),
            action_multiplicative_std=each(config.action_noise.enabled, config.action_noise.multiplicative_std),
            force_acceleration_std=each(config.random_forces.enabled, config.random_forces.acceleration_std),
            freeze_rate_hz=each(config.marker_freeze.enabled, config.marker_freeze.rate_hz),
            fingertip_step_std=each(noise.enabled, noise.fingertip_step_std_m),
            object_position_step_std=each(noise.enabled, noise.object_position_step_std_m),
            object_rotation_step_std=each(noise.enabled, noise.object_rotation_step_std_rad),
        )

    def assign(self, rows: np.ndarray, other: EpisodeEffects) -> None:
        """Overwrite the given rows with `other`'s draws."""
        for field in fields(self):
            getattr(self, field.name)[rows] = getattr(other, field.name)


def random_small_rotations(rng: np.random.Generator, count: int, angle_std: float | np.ndarray) -> np.ndarray:
    """Rotations (count, 4) about random axes by N(0, angle_std^2) angles (angle_std a scalar or (count,))."""
    return rotations.from_axis_angle(rotations.random_axis(rng, count), rng.normal(0.0, angle_std, count))


def noisy_actions(
    actions: np.ndarray, effects: EpisodeEffects, rng: np.random.Generator, config: Randomization
) -> np.ndarray:
    """Normalized actions (N, A) with multiplicative, per-step additive and per-episode noise, clipped to [-1, 1]."""
    if not config.action_noise.enabled:
        return actions
    scale = 1.0 + rng.standard_normal(actions.shape) * effects.action_multiplicative_std[:, None]
    additive = rng.standard_normal(actions.shape) * effects.action_additive_std[:, None]
    return np.clip(actions * scale + additive + effects.action_bias, -1.0, 1.0)


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
    forces: np.ndarray, effects: EpisodeEffects, masses: np.ndarray, rng: np.random.Generator, config: Randomization
) -> np.ndarray:
    """Forces (N, 3) on the cube: decayed, and with the episode's probability replaced by N(0, (accel * mass)^2)."""
    pushes = config.random_forces
    if not pushes.enabled:
        return forces
    forces = forces * pushes.decay
    new = rng.random(len(forces)) < effects.force_probability
    if new.any():
        strength = effects.force_acceleration_std[new] * masses[new]
        forces[new] = rng.normal(0.0, 1.0, (int(new.sum()), 3)) * strength[:, None]
    return forces


def freeze_markers(
    frozen_steps: np.ndarray, rates_hz: np.ndarray, rng: np.random.Generator, config: Randomization,
    control_dt: float,
) -> np.ndarray:
    """Remaining frozen steps per marker (N, 5) after this step: Poisson starts (rates_hz (N,)) of fixed-length
    freezes."""
    freeze = config.marker_freeze
    if not freeze.enabled:
        return frozen_steps
    remaining = np.maximum(frozen_steps - 1, 0)
    start_probability = 1.0 - np.exp(-rates_hz[:, None] * control_dt)
    starts = (remaining == 0) & (rng.random(remaining.shape) < start_probability)
    remaining[starts] = int(np.ceil(freeze.duration_s / control_dt))
    return remaining


def noisy_fingertips(
    true: np.ndarray, reported_before: np.ndarray, frozen: np.ndarray, effects: EpisodeEffects,
    rng: np.random.Generator, config: Randomization,
) -> np.ndarray:
    """Reported fingertip positions (N, 5, 3): frozen markers repeat their last report, others get noise."""
    reported = true + effects.fingertip_bias
    if config.observation_noise.enabled:
        reported = reported + rng.standard_normal(true.shape) * effects.fingertip_step_std[:, None, None]
    return np.where(frozen[..., None] > 0, reported_before, reported)


def noisy_object_pose(
    position: np.ndarray, quaternion: np.ndarray, effects: EpisodeEffects, rng: np.random.Generator,
    config: Randomization,
) -> tuple[np.ndarray, np.ndarray]:
    """Reported cube position (N, 3) and orientation (N, 4) with per-episode and per-step noise."""
    if not config.observation_noise.enabled:
        return position, quaternion
    count = len(position)
    step_noise = rng.standard_normal((count, 3)) * effects.object_position_step_std[:, None]
    position = position + effects.object_position_bias + step_noise
    step_rotation = random_small_rotations(rng, count, effects.object_rotation_step_std)
    quaternion = rotations.multiply(step_rotation, rotations.multiply(effects.object_rotation_bias, quaternion))
    return position, quaternion
