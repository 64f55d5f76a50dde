"""The MuJoCo scene: our assets/scene.xml around gymnasium-robotics' Shadow Hand, and named indices into it."""
from __future__ import annotations

import functools
import string
from dataclasses import dataclass

import mujoco
import numpy as np

from sim.paths import data_path, hand_assets_dir

SCENE_FILE = "assets/scene.xml"
FINGERTIP_SITES = ("robot0:S_fftip", "robot0:S_mftip", "robot0:S_rftip", "robot0:S_lftip", "robot0:S_thtip")
FINGERTIP_NAMES = ("ff", "mf", "rf", "lf", "th")  # the same fingertips, in the same order
CAMERA_NAMES = ("left", "front", "right")
CUBE_BODY = "cube"
CUBE_GEOM = "cube"
GOAL_BODY = "goal"
HAND_JOINT_PREFIX = "robot0:"


@functools.lru_cache(maxsize=8)
def scene_xml(timestep: float = 0.008) -> str:
    """The scene's MJCF text with the hand's asset paths and the physics timestep filled in."""
    assets = hand_assets_dir()
    template = string.Template(data_path(SCENE_FILE).read_text())
    return template.substitute(
        hand_dir=assets / "hand",
        mesh_dir=assets / "stls" / "hand",
        texture_dir=assets / "textures",
        timestep=repr(float(timestep)),
    )


def load_model(timestep: float = 0.008) -> mujoco.MjModel:
    """Compile the scene: 24 hand joints + the cube's free joint, 20 actuators, 3 cameras."""
    return mujoco.MjModel.from_xml_string(scene_xml(timestep))


def copy_arrays(model: mujoco.MjModel, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Copies of the named model arrays, e.g. {"body_mass": ...}, to be written back by write_arrays."""
    return {name: getattr(model, name).copy() for name in names}


def write_arrays(model: mujoco.MjModel, source: object, names: tuple[str, ...]) -> None:
    """Write `source`'s attributes of the given names into the model arrays of the same names."""
    for name in names:
        getattr(model, name)[:] = getattr(source, name)


@dataclass(frozen=True)
class SceneIndex:
    """Addresses of the things the task reads and writes, resolved once per model."""

    hand_joint_names: tuple[str, ...]
    hand_qpos: np.ndarray  # (24,) qpos addresses of the hand joints
    hand_dof: np.ndarray  # (24,) qvel addresses of the hand joints
    hand_body_ids: np.ndarray  # bodies of the hand, whose masses are randomized
    actuator_names: tuple[str, ...]
    fingertip_site_ids: np.ndarray  # (5,)
    cube_body: int
    cube_geom: int
    cube_qpos: int  # start of the cube's 7 qpos (position, quaternion)
    cube_dof: int  # start of the cube's 6 qvel (linear, angular)
    goal_mocap: int
    camera_ids: np.ndarray  # (3,) in CAMERA_NAMES order

    @property
    def n_actuators(self) -> int:
        """Number of position actuators (20: each finger's J1/J2 pair shares one)."""
        return len(self.actuator_names)


def index_scene(model: mujoco.MjModel) -> SceneIndex:
    """Resolve names in `model` into a SceneIndex."""
    hand_joints = [
        joint
        for joint in range(model.njnt)
        if model.joint(joint).name.startswith(HAND_JOINT_PREFIX) and model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_HINGE
    ]
    cube_body = model.body(CUBE_BODY).id
    cube_joint = model.body_jntadr[cube_body]
    hand_bodies = [body for body in range(model.nbody) if model.body(body).name.startswith(HAND_JOINT_PREFIX)]
    return SceneIndex(
        hand_joint_names=tuple(model.joint(joint).name for joint in hand_joints),
        hand_qpos=model.jnt_qposadr[hand_joints].copy(),
        hand_dof=model.jnt_dofadr[hand_joints].copy(),
        hand_body_ids=np.array(hand_bodies),
        actuator_names=tuple(model.actuator(actuator).name for actuator in range(model.nu)),
        fingertip_site_ids=np.array([model.site(name).id for name in FINGERTIP_SITES]),
        cube_body=cube_body,
        cube_geom=model.geom(CUBE_GEOM).id,
        cube_qpos=int(model.jnt_qposadr[cube_joint]),
        cube_dof=int(model.jnt_dofadr[cube_joint]),
        goal_mocap=int(model.body_mocapid[model.body(GOAL_BODY).id]),
        camera_ids=np.array([model.camera(name).id for name in CAMERA_NAMES]),
    )
