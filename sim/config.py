"""The environment's configuration: task, physics, and every randomization (Dactyl tables 1, 7, 8; appendix C).

Defaults are Dactyl's values; config/env.yaml restates them so a run's file says what it used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.config_loading import ConfigError, bound, choice, from_mapping, load_config
from sim.paths import data_path, package_file


@dataclass(frozen=True)
class TaskConfig:
    """Dactyl's reorientation task (appendix C)."""

    goal_mode: str = field(default="xyz", metadata=choice("xyz", "z"))
    action_type: str = field(default="discrete", metadata=choice("discrete", "continuous"))
    action_bins: int = field(default=11, metadata=bound(2, 101))
    # fraction of each actuator's half control range that a full action moves the target, per control step
    relative_action_scale: float = field(default=1.0, metadata=bound(0.01, 2.0))
    # weight of the new target in the exponential moving average of targets
    action_ema: float = field(default=0.3, metadata=bound(0.0, 1.0))
    physics_timestep: float = field(default=0.008, metadata=bound(0.0005, 0.02))
    substeps: int = field(default=10, metadata=bound(1, 100))
    success_threshold_rad: float = field(default=0.4, metadata=bound(0.01, 3.14))
    # xyz goals at most this far (rad) from the cube's orientation: pi is Dactyl's task (any orientation); less
    # is a training curriculum (`inhand eval` and the ROS goal manager always use pi)
    goal_max_angle_rad: float = field(default=math.pi, metadata=bound(0.5, math.pi))
    success_bonus: float = field(default=5.0, metadata=bound(0.0, 1000.0))
    drop_penalty: float = field(default=-20.0, metadata=bound(-1000.0, 0.0))
    max_consecutive_successes: int = field(default=50, metadata=bound(1, 10000))
    timeout_s: float = field(default=8.0, metadata=bound(0.1, 1000.0))
    # the cube counts as dropped when its centre falls below this height (world z; the palm is at 0.14 m)
    drop_height_m: float = field(default=0.10, metadata=bound(-1.0, 1.0))
    # control steps with the hand holding still after the cube is placed, so it lands before the episode
    settle_steps: int = field(default=3, metadata=bound(0, 100))
    # an episode starts only once the cube rests on the palm: below both speeds, waiting up to max_settle_steps
    # control steps in all (a cube dropped in a random orientation often still tumbles after settle_steps; at
    # 3 steps and full ranges 15% of cubes then fell off a still hand within a second); one that is still moving
    # then is placed again, as one that fell off is
    rest_speed_m_s: float = field(default=0.02, metadata=bound(0.0, 10.0))
    rest_angular_speed_rad_s: float = field(default=0.5, metadata=bound(0.0, 100.0))
    max_settle_steps: int = field(default=15, metadata=bound(0, 1000))
    max_reset_attempts: int = field(default=20, metadata=bound(1, 1000))

    def __post_init__(self) -> None:
        if self.max_settle_steps < self.settle_steps:
            raise ConfigError(f"task.max_settle_steps ({self.max_settle_steps}) must be at least task.settle_steps "
                              f"({self.settle_steps}): it is the longest a new cube may take to come to rest")
        if self.goal_max_angle_rad < math.pi and self.goal_mode != "xyz":
            raise ConfigError(f"task.goal_max_angle_rad ({self.goal_max_angle_rad}) limits xyz goals only; in goal "
                              f"mode {self.goal_mode} leave it at pi ({math.pi})")
        if self.goal_max_angle_rad <= self.success_threshold_rad:
            raise ConfigError(f"task.goal_max_angle_rad ({self.goal_max_angle_rad}) must exceed "
                              f"task.success_threshold_rad ({self.success_threshold_rad}), or no goal is far "
                              "enough away to need a turn")


@dataclass(frozen=True)
class PhysicsRandomization:
    """Per-episode physics parameters, always resampled from the nominal model (Dactyl table 8)."""

    enabled: bool = True
    object_size_scale: tuple[float, float] = field(default=(0.95, 1.05), metadata=bound(0.5, 2.0))
    mass_scale: tuple[float, float] = field(default=(0.5, 1.5), metadata=bound(0.01, 10.0))
    friction_scale: tuple[float, float] = field(default=(0.7, 1.3), metadata=bound(0.01, 10.0))
    # damping and actuator gain: log-uniform between the bounds
    damping_scale: tuple[float, float] = field(default=(0.3, 3.0), metadata=bound(0.01, 100.0))
    actuator_gain_scale: tuple[float, float] = field(default=(0.75, 1.5), metadata=bound(0.01, 100.0))
    joint_limit_std_rad: float = field(default=0.15, metadata=bound(0.0, 1.0))
    gravity_std: float = field(default=0.4, metadata=bound(0.0, 5.0))
    # Gaussian draws are truncated at this many standard deviations so no episode gets an absurd model
    truncate_sigmas: float = field(default=3.0, metadata=bound(0.5, 10.0))
    # a randomized joint range never gets narrower than this
    min_joint_range_rad: float = field(default=0.05, metadata=bound(0.0, 1.0))


@dataclass(frozen=True)
class ActionNoise:
    """Noise on the normalized action in [-1, 1]: per-step additive, per-episode bias, per-step multiplicative."""

    enabled: bool = True
    additive_std: float = field(default=0.05, metadata=bound(0.0, 1.0))
    correlated_std: float = field(default=0.015, metadata=bound(0.0, 1.0))
    multiplicative_std: float = field(default=0.015, metadata=bound(0.0, 1.0))


@dataclass(frozen=True)
class ActionDelay:
    """Each actuator, with this probability per episode, applies its target one control step late."""

    enabled: bool = True
    probability: float = field(default=0.5, metadata=bound(0.0, 1.0))


@dataclass(frozen=True)
class ControlTiming:
    """Control period = nominal + Exp(lambda), lambda ~ U[rate_range] per episode (1/s)."""

    enabled: bool = True
    rate_range: tuple[float, float] = field(default=(1250.0, 10000.0), metadata=bound(1.0, 1e6))


@dataclass(frozen=True)
class Backlash:
    """Dead band between commanded and applied target, width ~ U[0, max_width_rad] per actuator and episode."""

    enabled: bool = True
    max_width_rad: float = field(default=0.02, metadata=bound(0.0, 0.5))


@dataclass(frozen=True)
class RandomForces:
    """Random pushes on the cube: per-episode probability ~ logU, force ~ N(0, (accel * mass)^2), decaying."""

    enabled: bool = True
    probability_range: tuple[float, float] = field(default=(0.001, 0.1), metadata=bound(1e-6, 1.0))
    acceleration_std: float = field(default=1.0, metadata=bound(0.0, 100.0))
    decay: float = field(default=0.99, metadata=bound(0.0, 1.0))


@dataclass(frozen=True)
class ObservationNoise:
    """Per-episode (correlated) and per-step (uncorrelated) noise on the policy's inputs."""

    enabled: bool = True
    fingertip_step_std_m: float = field(default=0.001, metadata=bound(0.0, 0.1))
    fingertip_episode_std_m: float = field(default=0.002, metadata=bound(0.0, 0.1))
    object_position_step_std_m: float = field(default=0.001, metadata=bound(0.0, 0.1))
    object_position_episode_std_m: float = field(default=0.005, metadata=bound(0.0, 0.1))
    object_rotation_step_std_rad: float = field(default=0.02, metadata=bound(0.0, 1.0))
    object_rotation_episode_std_rad: float = field(default=0.05, metadata=bound(0.0, 1.0))


@dataclass(frozen=True)
class MarkerFreeze:
    """A fingertip marker stops updating (Poisson rate per marker) for a while, as PhaseSpace markers did."""

    enabled: bool = True
    rate_hz: float = field(default=0.2, metadata=bound(0.0, 100.0))
    duration_s: float = field(default=1.0, metadata=bound(0.0, 100.0))


@dataclass(frozen=True)
class VisualRandomization:
    """Appearance randomization for rendered camera images (Dactyl appendix C.2), used by vision/."""

    enabled: bool = True
    camera_position_m: float = field(default=0.0015, metadata=bound(0.0, 0.1))
    camera_rotation_deg: float = field(default=3.0, metadata=bound(0.0, 45.0))
    camera_fovy_deg: float = field(default=1.0, metadata=bound(0.0, 20.0))
    lights_on: tuple[int, int] = field(default=(4, 6), metadata=bound(1, 6))
    light_position_m: float = field(default=0.3, metadata=bound(0.0, 2.0))
    light_diffuse: tuple[float, float] = field(default=(0.1, 0.6), metadata=bound(0.0, 1.0))
    # hue/brightness of the hand, cube, table: each rgb channel scaled by U[lo, hi]
    colour_scale: tuple[float, float] = field(default=(0.6, 1.2), metadata=bound(0.0, 3.0))
    specular: tuple[float, float] = field(default=(0.0, 1.0), metadata=bound(0.0, 1.0))
    shininess: tuple[float, float] = field(default=(0.0, 1.0), metadata=bound(0.0, 1.0))
    contrast: tuple[float, float] = field(default=(0.5, 1.5), metadata=bound(0.0, 5.0))
    pixel_noise_std: float = field(default=4.0, metadata=bound(0.0, 64.0))


@dataclass(frozen=True)
class AdrConfig:
    """Automatic domain randomization (OpenAI 2019; DeXtreme 2022): ranges start at nominal and widen toward the
    values configured above (their hard limits) only while the policy performs well at their boundaries."""

    # share of episodes that evaluate one boundary (DeXtreme: 40%); the rest sample inside the current ranges
    boundary_fraction: float = field(default=0.4, metadata=bound(0.0, 1.0))
    # episodes per boundary before its mean decides (DeXtreme: 256; a CPU run finishes far fewer episodes)
    buffer_size: int = field(default=16, metadata=bound(1, 100_000))
    # mean consecutive successes at a boundary: at or above high it widens, below low it narrows (DeXtreme 20 / 5)
    high_threshold: float = field(default=6.0, metadata=bound(0.0, 10_000.0))
    low_threshold: float = field(default=2.0, metadata=bound(0.0, 10_000.0))
    # a boundary moves by 1/steps of the way from nominal to its limit
    steps: int = field(default=10, metadata=bound(1, 100_000))

    def __post_init__(self) -> None:
        if self.low_threshold > self.high_threshold:
            raise ConfigError(f"randomization.adr: the low threshold ({self.low_threshold}) exceeds the high one "
                              f"({self.high_threshold}); give low_threshold at most high_threshold (a train "
                              "config's env.adr_low_threshold / env.adr_high_threshold override them)")


@dataclass(frozen=True)
class Randomization:
    """All randomizations, each switchable; `mode` adr widens their ranges from nominal as the policy improves."""

    mode: str = field(default="fixed", metadata=choice("fixed", "adr"))
    adr: AdrConfig = AdrConfig()
    physics: PhysicsRandomization = PhysicsRandomization()
    action_noise: ActionNoise = ActionNoise()
    action_delay: ActionDelay = ActionDelay()
    control_timing: ControlTiming = ControlTiming()
    backlash: Backlash = Backlash()
    random_forces: RandomForces = RandomForces()
    observation_noise: ObservationNoise = ObservationNoise()
    marker_freeze: MarkerFreeze = MarkerFreeze()
    visual: VisualRandomization = VisualRandomization()

    def disabled(self, *groups: str) -> Randomization:
        """A copy with the named groups (default: every randomization) switched off."""
        unknown = sorted(set(groups) - set(_GROUPS))
        if unknown:
            raise ValueError(f"no randomization group {unknown}; the groups are {', '.join(_GROUPS)}")
        if not groups:
            return Randomization(**{name: replace(getattr(self, name), enabled=False) for name in _GROUPS})
        return replace(self, **{name: replace(getattr(self, name), enabled=False) for name in groups})


_GROUPS = tuple(name for name in Randomization.__dataclass_fields__ if name not in ("mode", "adr"))
# what happens between a commanded target and the physics (sim.actuation), apart from the physics' own draws
UNMODELED_EFFECTS = ("action_noise", "action_delay", "control_timing", "backlash", "random_forces")


@dataclass(frozen=True)
class EnvConfig:
    """Everything the environment needs: the task and the randomizations."""

    task: TaskConfig = TaskConfig()
    randomization: Randomization = Randomization()

    def with_options(self, **options: Any) -> EnvConfig:
        """A copy with task fields (goal_mode=..., action_type=...) overridden; `randomize=False` turns all off."""
        randomize = options.pop("randomize", True)
        task = from_mapping(TaskConfig, {**_task_mapping(self.task), **options}, source="env options")
        randomization = self.randomization if randomize else self.randomization.disabled()
        return EnvConfig(task=task, randomization=randomization)


def _task_mapping(task: TaskConfig) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TaskConfig.__dataclass_fields__}


DEFAULT_CONFIG_PATH = "config/env.yaml"


def load_env_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> EnvConfig:
    """Load config/env.yaml (or `path`: as given, else the package's file of that name) into an EnvConfig."""
    return load_config(EnvConfig, data_path(DEFAULT_CONFIG_PATH) if path is None else package_file(path), overrides)
