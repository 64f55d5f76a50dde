"""Per-episode physics randomization (Dactyl table 8): a pure function of (model, nominal, rng, config).

Every draw starts from the nominal values captured once from the compiled model, so randomizations never
compound across episodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.config import PhysicsRandomization
from sim.scene import SceneIndex, copy_arrays, write_arrays

# model arrays that physics randomization rewrites whole; the cube's geometry and opt are handled one by one
RANDOMIZED_ARRAYS = (
    "body_mass", "body_inertia", "geom_friction", "dof_damping", "actuator_gainprm", "actuator_biasprm", "jnt_range",
)


@dataclass(frozen=True)
class NominalPhysics:
    """Copies of the model arrays that physics randomization rewrites, as compiled from the scene."""

    body_mass: np.ndarray
    body_inertia: np.ndarray
    geom_friction: np.ndarray
    dof_damping: np.ndarray
    actuator_gainprm: np.ndarray
    actuator_biasprm: np.ndarray
    jnt_range: np.ndarray
    gravity: np.ndarray
    timestep: float
    cube_size: np.ndarray
    cube_rbound: float
    cube_aabb: np.ndarray
    randomized_bodies: np.ndarray  # hand links and the cube
    hand_joints: np.ndarray  # joint ids of the 24 hinges
    hand_dofs: np.ndarray
    cube_body: int
    cube_geom: int


def capture_nominal(model: mujoco.MjModel, index: SceneIndex) -> NominalPhysics:
    """Snapshot the nominal physics of a freshly compiled model."""
    hand_joints = np.array([model.joint(name).id for name in index.hand_joint_names])
    return NominalPhysics(
        **copy_arrays(model, RANDOMIZED_ARRAYS),
        gravity=model.opt.gravity.copy(),
        timestep=float(model.opt.timestep),
        cube_size=model.geom_size[index.cube_geom].copy(),
        cube_rbound=float(model.geom_rbound[index.cube_geom]),
        cube_aabb=model.geom_aabb[index.cube_geom].copy(),
        randomized_bodies=np.append(index.hand_body_ids, index.cube_body),
        hand_joints=hand_joints,
        hand_dofs=index.hand_dof.copy(),
        cube_body=index.cube_body,
        cube_geom=index.cube_geom,
    )


def restore_nominal(model: mujoco.MjModel, nominal: NominalPhysics) -> None:
    """Write the nominal physics back into `model`."""
    write_arrays(model, nominal, RANDOMIZED_ARRAYS)
    model.opt.gravity[:] = nominal.gravity
    model.opt.timestep = nominal.timestep
    model.geom_size[nominal.cube_geom] = nominal.cube_size
    model.geom_rbound[nominal.cube_geom] = nominal.cube_rbound
    model.geom_aabb[nominal.cube_geom] = nominal.cube_aabb


def uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | tuple[int, ...]) -> np.ndarray:
    """U[lo, hi] draws."""
    return rng.uniform(bounds[0], bounds[1], size)


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | tuple[int, ...]) -> np.ndarray:
    """Draws whose logarithm is uniform between log(lo) and log(hi)."""
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size))


def truncated_normal(rng: np.random.Generator, std: float, size: int | tuple[int, ...], sigmas: float) -> np.ndarray:
    """N(0, std^2) draws, redrawn until they lie within +-sigmas*std."""
    values = rng.normal(0.0, std, size)
    outside = np.abs(values) > sigmas * std
    while outside.any():
        values[outside] = rng.normal(0.0, std, int(outside.sum()))
        outside = np.abs(values) > sigmas * std
    return values


def randomize_physics(
    model: mujoco.MjModel, nominal: NominalPhysics, rng: np.random.Generator, config: PhysicsRandomization
) -> None:
    """Write one episode's randomized physics into `model`, drawn around `nominal` (nominal when disabled)."""
    restore_nominal(model, nominal)
    if not config.enabled:
        return
    bodies = nominal.randomized_bodies
    mass_scale = uniform(rng, config.mass_scale, len(bodies))
    size_scale = float(uniform(rng, config.object_size_scale, 1)[0])
    model.body_mass[bodies] = nominal.body_mass[bodies] * mass_scale
    inertia_scale = mass_scale.copy()
    # a cube's inertia grows with the square of its edge
    inertia_scale[-1] *= size_scale**2
    model.body_inertia[bodies] = nominal.body_inertia[bodies] * inertia_scale[:, None]

    model.geom_size[nominal.cube_geom] = nominal.cube_size * size_scale
    model.geom_rbound[nominal.cube_geom] = nominal.cube_rbound * size_scale
    model.geom_aabb[nominal.cube_geom, 3:] = nominal.cube_aabb[3:] * size_scale

    model.geom_friction[:] = nominal.geom_friction * uniform(rng, config.friction_scale, (model.ngeom, 1))
    dofs = nominal.hand_dofs
    model.dof_damping[dofs] = nominal.dof_damping[dofs] * log_uniform(rng, config.damping_scale, len(dofs))

    gain = log_uniform(rng, config.actuator_gain_scale, model.nu)
    # a position actuator's force is kp * (ctrl - q): gainprm[0] = kp and biasprm[1] = -kp scale together
    model.actuator_gainprm[:, 0] = nominal.actuator_gainprm[:, 0] * gain
    model.actuator_biasprm[:, 1] = nominal.actuator_biasprm[:, 1] * gain

    joints = nominal.hand_joints
    limits = nominal.jnt_range[joints] + truncated_normal(
        rng, config.joint_limit_std_rad, (len(joints), 2), config.truncate_sigmas
    )
    too_narrow = limits[:, 1] - limits[:, 0] < config.min_joint_range_rad
    centre = limits[too_narrow].mean(axis=1)
    limits[too_narrow] = centre[:, None] + np.array([-0.5, 0.5]) * config.min_joint_range_rad
    model.jnt_range[joints] = limits

    model.opt.gravity[:] = nominal.gravity + truncated_normal(rng, config.gravity_std, 3, config.truncate_sigmas)
