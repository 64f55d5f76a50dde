"""Shadow Hand names and units: the sim model's joints and actuators <-> Shadow's ROS stack (rh_* joints, J0 targets).

Naming. The sim model (gymnasium-robotics, OpenAI's lineage) numbers joints from 0 at the fingertip; Shadow numbers
them from 1, so robot0:<F>J<n> is rh_<F>J<n+1> for every finger and the wrist. Checked against the model's joint
ranges and Shadow's published ranges (degrees): robot0:WRJ1 [-28, 8] is Shadow's WRJ2 (flexion, the only
asymmetric wrist range of that width), robot0:WRJ0 [-40, 28] is WRJ1, robot0:LFJ4 [0, 45] is the little finger's
metacarpal LFJ5, robot0:THJ4 [-60, 60] is THJ5, robot0:THJ3 [0, 70] is THJ4, robot0:THJ2 [-12, 12] is THJ3,
robot0:FFJ3 [-20, 20] is FFJ4 (abduction), and robot0:FFJ2..FFJ0 [0, 90] are FFJ3..FFJ1.

One sign. robot0:THJ0 spans [-90, 0] degrees while Shadow's THJ1 flexes positively (0..90): in the model a negative
THJ0 moves the thumb tip towards the fingers (checked with forward kinematics), so rh_THJ1 = -robot0:THJ0. The
symmetric thumb ranges cannot show a sign this way; they are taken as equal.

Coupling. For FF, MF, RF and LF, the actuator on robot0:<F>J1 (Shadow's J2) also moves robot0:<F>J0 (Shadow's J1)
through the fixed tendon robot0:T_<F>J1c, c0 * q(J0) + c1 * q(J1) held near 0, so q(J0) = (-c1 / c0) * q(J1).
Shadow's controller for such a finger takes one target "J0" = J1 + J2 (Shadow numbering) = q(J0) + q(J1) =
(1 + ratio) * q(J1); the ratio is read from the model's tendon, never hard-coded.

Limits. The env commands every actuator anywhere in its control range, so a policy's J0 commands span
(1 + ratio) x [0, 90 deg] = [0, 3.365] rad (command_limits): the safety filter of the sim driver keeps exactly
that range, and no command the policy learned is clamped. The model's tendon lets the pair reach only 2.947 rad
(the distal joint hits 90 deg first), but a target beyond that is harmless in the sim, where the actuator pushes
against the joint limit as it did in training. The real hand's J0 is J1 + J2 with each in [0, 90 deg], so [0, pi]
(hand_limits): the right limit for Shadow's controllers is where both agree, [0, pi] for J0 and the joint range for
every other joint (the model's ranges are Shadow's published ones, and equal its control ranges).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import mujoco
import numpy as np

SIM_PREFIX = "robot0:"
SHADOW_PREFIX = "rh_"
COUPLED_FINGERS = ("FF", "MF", "RF", "LF")
MIRRORED_SHADOW_JOINTS = frozenset({"rh_THJ1"})
_SIM_JOINT = re.compile(r"^robot0:(WR|FF|MF|RF|LF|TH)J(\d)$")
_SHADOW_JOINT = re.compile(r"^rh_(WR|FF|MF|RF|LF|TH)J(\d)$")


def sim_to_shadow_name(sim_joint: str) -> str:
    """robot0:FFJ0 -> rh_FFJ1 (the sim numbers from 0 at the tip, Shadow from 1)."""
    match = _SIM_JOINT.match(sim_joint)
    if match is None:
        raise ValueError(f"{sim_joint!r} is not a sim hand joint name (robot0:<WR|FF|MF|RF|LF|TH>J<digit>)")
    return f"{SHADOW_PREFIX}{match.group(1)}J{int(match.group(2)) + 1}"


def shadow_to_sim_name(shadow_joint: str) -> str:
    """rh_FFJ1 -> robot0:FFJ0; the coupled targets rh_<F>J0 have no single sim joint and are rejected."""
    match = _SHADOW_JOINT.match(shadow_joint)
    if match is None or match.group(2) == "0":
        raise ValueError(f"{shadow_joint!r} is not a Shadow joint name (rh_<WR|FF|MF|RF|LF|TH>J<1..5>)")
    return f"{SIM_PREFIX}{match.group(1)}J{int(match.group(2)) - 1}"


def controller_topic(command_name: str) -> str:
    """rh_FFJ0 -> /sh_rh_ffj0_position_controller/command, the topic of Shadow's position controller."""
    return f"/sh_{command_name.lower()}_position_controller/command"


def coupling_ratio(model: mujoco.MjModel, finger: str) -> float:
    """q(<finger>J0) / q(<finger>J1) that the coupling tendon robot0:T_<finger>J1c enforces (sim numbering)."""
    tendon = model.tendon(f"{SIM_PREFIX}T_{finger}J1c").id
    start, count = model.tendon_adr[tendon], model.tendon_num[tendon]
    coefficients = {}
    for wrap in range(start, start + count):
        if model.wrap_type[wrap] != mujoco.mjtWrap.mjWRAP_JOINT:
            raise ValueError(f"tendon {model.tendon(tendon).name} wraps something other than joints")
        coefficients[model.joint(model.wrap_objid[wrap]).name] = float(model.wrap_prm[wrap])
    distal, middle = f"{SIM_PREFIX}{finger}J0", f"{SIM_PREFIX}{finger}J1"
    if set(coefficients) != {distal, middle}:
        raise ValueError(f"tendon {model.tendon(tendon).name} should couple {distal} and {middle}, has {coefficients}")
    return -coefficients[middle] / coefficients[distal]


@dataclass(frozen=True)
class JointMap:
    """Index maps and unit conversions between a sim model's 24 joints / 20 actuators and Shadow's names."""

    sim_joint_names: tuple[str, ...]  # (24,) model order
    shadow_joint_names: tuple[str, ...]  # (24,) same order
    joint_signs: np.ndarray  # (24,) shadow value = sign * sim value
    sim_actuator_names: tuple[str, ...]  # (20,) model order
    command_names: tuple[str, ...]  # (20,) Shadow controller joint per actuator: rh_FFJ0 for coupled fingers
    command_scale: np.ndarray  # (20,) shadow command = scale * sim ctrl (1 + ratio for J0, the sign otherwise)
    command_limits: np.ndarray  # (20, 2) lower, upper of each command in Shadow units: the env's control ranges
    hand_limits: np.ndarray  # (20, 2) the hand's joint ranges in command units (J0: the sum of J1's and J2's)
    actuated_joint: np.ndarray  # (20,) index into the 24 joints of the joint each actuator drives
    coupled_partner: np.ndarray  # (20,) index of the joint a coupled actuator drags along, -1 if none

    @classmethod
    def from_model(cls, model: mujoco.MjModel, sim_joint_names: tuple[str, ...]) -> JointMap:
        """Build the map for `model`, whose hand joints (in order) are `sim_joint_names`."""
        shadow = tuple(sim_to_shadow_name(name) for name in sim_joint_names)
        signs = np.array([-1.0 if name in MIRRORED_SHADOW_JOINTS else 1.0 for name in shadow])
        position = {name: i for i, name in enumerate(sim_joint_names)}
        actuators, commands, scales, limits, hand_limits, driven, partners = [], [], [], [], [], [], []
        for actuator in range(model.nu):
            if model.actuator_trntype[actuator] != mujoco.mjtTrn.mjTRN_JOINT:
                raise ValueError(f"actuator {model.actuator(actuator).name} does not drive a joint")
            joint = model.joint(model.actuator_trnid[actuator, 0]).name
            finger, number = _SIM_JOINT.match(joint).groups()  # type: ignore[union-attr]
            lower, upper = model.actuator_ctrlrange[actuator]
            joint_lower, joint_upper = model.joint(joint).range
            actuators.append(model.actuator(actuator).name)
            driven.append(position[joint])
            if finger in COUPLED_FINGERS and number == "1":
                ratio = coupling_ratio(model, finger)
                distal = model.joint(f"{SIM_PREFIX}{finger}J0")
                commands.append(f"{SHADOW_PREFIX}{finger}J0")
                scales.append(1.0 + ratio)
                limits.append(((1.0 + ratio) * lower, (1.0 + ratio) * upper))
                hand_limits.append((joint_lower + distal.range[0], joint_upper + distal.range[1]))
                partners.append(position[distal.name])
            else:
                sign = signs[position[joint]]
                commands.append(shadow[position[joint]])
                scales.append(sign)
                limits.append(tuple(sorted((sign * lower, sign * upper))))
                hand_limits.append(tuple(sorted((sign * joint_lower, sign * joint_upper))))
                partners.append(-1)
        return cls(
            sim_joint_names=tuple(sim_joint_names),
            shadow_joint_names=shadow,
            joint_signs=signs,
            sim_actuator_names=tuple(actuators),
            command_names=tuple(commands),
            command_scale=np.array(scales),
            command_limits=np.array(limits, dtype=np.float64),
            hand_limits=np.array(hand_limits, dtype=np.float64),
            actuated_joint=np.array(driven),
            coupled_partner=np.array(partners),
        )

    def joints_to_shadow(self, sim_positions: np.ndarray) -> np.ndarray:
        """Sim joint values (..., 24) -> Shadow joint values (..., 24), same order (positions or velocities)."""
        return np.asarray(sim_positions, dtype=np.float64) * self.joint_signs

    def joints_to_sim(self, shadow_positions: np.ndarray) -> np.ndarray:
        """Shadow joint values (..., 24) -> sim joint values (..., 24)."""
        return np.asarray(shadow_positions, dtype=np.float64) * self.joint_signs

    def commands_to_ctrl(self, commands: np.ndarray) -> np.ndarray:
        """Shadow command targets (..., 20) (J0 = J1 + J2 for coupled fingers) -> sim actuator ctrl (..., 20)."""
        return np.asarray(commands, dtype=np.float64) / self.command_scale

    def ctrl_to_commands(self, ctrl: np.ndarray) -> np.ndarray:
        """Sim actuator ctrl (..., 20) -> Shadow command targets (..., 20)."""
        return np.asarray(ctrl, dtype=np.float64) * self.command_scale

    def commands_from_joints(self, shadow_positions: np.ndarray) -> np.ndarray:
        """Where the hand is, in command units (..., 20): each commanded joint, J1 + J2 for the coupled ones."""
        positions = np.asarray(shadow_positions, dtype=np.float64)
        commands = positions[..., self.actuated_joint].copy()
        coupled = self.coupled_partner >= 0
        commands[..., coupled] += positions[..., self.coupled_partner[coupled]]
        return commands

    def shadow_index(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Positions of Shadow joint `names` in shadow_joint_names; an unknown name is an error."""
        lookup = {name: i for i, name in enumerate(self.shadow_joint_names)}
        unknown = [name for name in names if name not in lookup]
        if unknown:
            raise KeyError(f"unknown Shadow joint(s) {unknown}; known: {list(self.shadow_joint_names)}")
        return np.array([lookup[name] for name in names], dtype=np.int64)

    def command_index(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Positions of command `names` (rh_FFJ0, rh_FFJ3, ...) in command_names; an unknown name is an error."""
        lookup = {name: i for i, name in enumerate(self.command_names)}
        unknown = [name for name in names if name not in lookup]
        if unknown:
            raise KeyError(f"unknown command joint(s) {unknown}; accepted: {list(self.command_names)}")
        return np.array([lookup[name] for name in names], dtype=np.int64)


def default_joint_map() -> JointMap:
    """The JointMap of the project's scene model (sim.scene)."""
    from sim.scene import index_scene, load_model

    model = load_model()
    return JointMap.from_model(model, index_scene(model).hand_joint_names)
