"""Sim <-> Shadow joint names, the thumb's sign, and the coupled J0 targets, against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from ros_nodes.joint_map import (
    JointMap,
    controller_topic,
    coupling_ratio,
    shadow_to_sim_name,
    sim_to_shadow_name,
)
from sim.scene import index_scene, load_model

RATIO = 0.00805 / 0.00705  # robot0:T_FFJ1c: 0.00705 * FFJ0 - 0.00805 * FFJ1 = 0


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def joint_map(model) -> JointMap:
    return JointMap.from_model(model, index_scene(model).hand_joint_names)


def test_every_sim_joint_maps_to_shadow_index_plus_one(joint_map: JointMap) -> None:
    expected = ["rh_WRJ2", "rh_WRJ1"]
    for finger in ("FF", "MF", "RF"):
        expected += [f"rh_{finger}J{n}" for n in (4, 3, 2, 1)]
    expected += [f"rh_LFJ{n}" for n in (5, 4, 3, 2, 1)] + [f"rh_THJ{n}" for n in (5, 4, 3, 2, 1)]
    assert list(joint_map.shadow_joint_names) == expected
    assert sim_to_shadow_name("robot0:WRJ1") == "rh_WRJ2"
    assert sim_to_shadow_name("robot0:FFJ0") == "rh_FFJ1"
    assert sim_to_shadow_name("robot0:THJ4") == "rh_THJ5"
    assert shadow_to_sim_name("rh_LFJ5") == "robot0:LFJ4"
    with pytest.raises(ValueError, match="not a Shadow joint"):
        shadow_to_sim_name("rh_FFJ0")
    with pytest.raises(ValueError, match="not a sim hand joint"):
        sim_to_shadow_name("robot0:XXJ1")


def test_ranges_that_fix_the_mapping(model) -> None:
    # the asymmetric ranges the naming is checked against (module docstring), in degrees
    def degrees(name: str) -> list[int]:
        return [round(v) for v in np.rad2deg(model.joint(name).range)]

    assert degrees("robot0:WRJ1") == [-28, 8]
    assert degrees("robot0:WRJ0") == [-40, 28]
    assert degrees("robot0:LFJ4") == [0, 45]
    assert degrees("robot0:THJ3") == [0, 70]
    assert degrees("robot0:THJ0") == [-90, 0]  # mirrored: Shadow's THJ1 flexes positive


def test_thumb_distal_sign_and_commands(joint_map: JointMap) -> None:
    sim = np.zeros(24)
    sim[23] = -0.5  # robot0:THJ0
    shadow = joint_map.joints_to_shadow(sim)
    assert shadow[23] == 0.5 and joint_map.shadow_joint_names[23] == "rh_THJ1"
    np.testing.assert_array_equal(joint_map.joints_to_sim(shadow), sim)
    thumb = joint_map.command_names.index("rh_THJ1")
    np.testing.assert_allclose(joint_map.command_limits[thumb], [0.0, 1.571])
    assert joint_map.commands_to_ctrl(np.eye(20)[thumb] * 0.7)[thumb] == pytest.approx(-0.7)


def test_coupling_ratio_comes_from_the_tendon(model) -> None:
    for finger in ("FF", "MF", "RF", "LF"):
        assert coupling_ratio(model, finger) == pytest.approx(RATIO)
    assert RATIO == pytest.approx(1.141844, abs=1e-6)


def test_j0_commands(joint_map: JointMap) -> None:
    names = joint_map.command_names
    assert len(names) == 20
    assert [n for n in names if n.endswith("J0")] == ["rh_FFJ0", "rh_MFJ0", "rh_RFJ0", "rh_LFJ0"]
    ff = names.index("rh_FFJ0")
    # J0 = 1.0 rad -> the middle joint (robot0:FFJ1) target 1 / (1 + 1.141844) = 0.466887
    ctrl = joint_map.commands_to_ctrl(np.eye(20)[ff])
    assert ctrl[ff] == pytest.approx(0.466887, abs=1e-6)
    np.testing.assert_allclose(joint_map.ctrl_to_commands(ctrl), np.eye(20)[ff])
    # J0 commands as the env gives them: the middle actuator's control range [0, 1.571] x 2.141844 = 3.364837
    np.testing.assert_allclose(joint_map.command_limits[ff], [0.0, 3.364837], atol=1e-6)
    # the real hand's J0 is J1 + J2, each in [0, 1.571] (90 degrees as the model rounds it)
    np.testing.assert_allclose(joint_map.hand_limits[ff], [0.0, 3.142], atol=1e-9)
    # every other joint: its range, which is also its control range (the thumb's mirrored)
    others = [i for i, name in enumerate(names) if not name.endswith("J0")]
    np.testing.assert_array_equal(joint_map.hand_limits[others], joint_map.command_limits[others])
    np.testing.assert_allclose(joint_map.hand_limits[names.index("rh_THJ1")], [0.0, 1.571], atol=1e-9)
    # where the hand is, in command units: rh_FFJ1 + rh_FFJ2
    shadow = np.zeros(24)
    shadow[joint_map.shadow_index(["rh_FFJ1", "rh_FFJ2", "rh_FFJ3"])] = [0.3, 0.2, 0.1]
    commands = joint_map.commands_from_joints(shadow)
    assert commands[ff] == pytest.approx(0.5)
    assert commands[names.index("rh_FFJ3")] == pytest.approx(0.1)
    assert controller_topic("rh_FFJ0") == "/sh_rh_ffj0_position_controller/command"
    with pytest.raises(KeyError, match="rh_FFJ1"):
        joint_map.command_index(["rh_FFJ1"])
