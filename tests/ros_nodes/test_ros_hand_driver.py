"""hand_driver on the inproc backend: the sim publishes state, images and /clock and follows commands; the shadow
backend maps commands onto Shadow's per-joint controllers; diagnostics report what the safety layer did."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.hand_driver import DriverConfig, HandDriver, driver_env_config
from ros_nodes.joint_map import controller_topic
from ros_nodes.transport import QosProfile, create_node
from sim import rotations, task
from sim.batch import ReorientBatch, episode_seed
from sim.config_loading import ConfigError

_domains = itertools.count(3000)


class Listener:
    """An inproc node that keeps every message of the topics it is given."""

    def __init__(self, domain: int, topics: dict[str, type]) -> None:
        self.node = create_node("listener", backend="inproc", domain_id=domain)
        self.received: dict[str, list] = {topic: [] for topic in topics}
        for topic, msg_type in topics.items():
            # best effort matches the driver's reliable topics and its best-effort images alike
            self.node.create_subscription(msg_type, topic, self.received[topic].append, QosProfile(1000, reliable=False))

    def spin(self) -> None:
        while self.node.spin_once(0.0):
            pass


def test_sim_driver_publishes_state_images_clock_and_follows_a_command() -> None:
    domain = next(_domains)
    node = create_node("hand_driver", backend="inproc", domain_id=domain)
    config = DriverConfig(camera_height=48, camera_width=64, randomize=False, max_rate_rad_s=4.0)
    driver = HandDriver(node, config, start_timer=False)
    listener = Listener(domain, {
        "hand/joint_states": msgs.JointState, "/clock": msgs.Clock, "object/pose_true": msgs.PoseStamped,
        "/diagnostics": msgs.DiagnosticArray,
        **{f"cameras/{c}/image_raw": msgs.Image for c in ("left", "front", "right")},
        **{f"cameras/{c}/camera_info": msgs.CameraInfo for c in ("left", "front", "right")},
    })
    command = listener.node.create_publisher(msgs.JointState, "hand/command")
    try:
        for _ in range(25):
            command.publish(msgs.JointState(name=["rh_FFJ3", "rh_FFJ0"], position=np.array([1.0, 1.5])))
            node.spin_once(0.0)
            driver.step()
        driver.publish_diagnostics()
        listener.spin()
    finally:
        driver.close()
        node.shutdown()
        listener.node.shutdown()
    received = listener.received
    assert len(received["/diagnostics"]) == 3  # at 0.08 s, 1.04 s (1 s period of sim time), and the one asked for
    assert len(received["hand/joint_states"]) == 25
    assert [m.clock.to_ns() for m in received["/clock"]][:3] == [80_000_000, 160_000_000, 240_000_000]
    for camera in ("left", "front", "right"):
        image = received[f"cameras/{camera}/image_raw"][-1]
        assert (image.height, image.width, image.encoding, image.step) == (48, 64, "rgb8", 192)
        assert image.data.shape == (48 * 64 * 3,) and image.data.std() > 5  # a real picture, not a blank
        info = received[f"cameras/{camera}/camera_info"][-1]
        assert (info.height, info.width) == (48, 64) and info.k[2] == 32.0 and info.k[5] == 24.0
    state = received["hand/joint_states"][-1]
    assert state.header.stamp.to_ns() == 25 * 80_000_000
    position = dict(zip(state.name, state.position))
    assert position["rh_FFJ3"] == pytest.approx(1.0, abs=0.1)
    assert position["rh_FFJ1"] + position["rh_FFJ2"] == pytest.approx(1.5, abs=0.15)
    # the coupling tendon keeps 0.00705 * J1 - 0.00805 * J2 within its range of +-1 mm (and a little softness)
    assert abs(0.00705 * position["rh_FFJ1"] - 0.00805 * position["rh_FFJ2"]) < 0.0012
    assert received["object/pose_true"][-1].pose.position.z > 0.1  # the cube is on the palm
    status = received["/diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["commands_accepted"] == "25" and values["watchdog_trips"] == "0"


def test_sim_driver_rejects_a_control_period_that_disagrees_with_the_sim() -> None:
    node = create_node("hand_driver", backend="inproc", domain_id=next(_domains))
    with pytest.raises(ConfigError, match="control_period_s"):
        HandDriver(node, DriverConfig(control_period_s=0.05, publish_images=False), start_timer=False)
    node.shutdown()


def test_shadow_backend_maps_commands_to_per_joint_controllers() -> None:
    domain = next(_domains)
    node = create_node("hand_driver", backend="inproc", domain_id=domain)
    driver = HandDriver(node, DriverConfig(backend="shadow", max_rate_rad_s=2.0), start_timer=False)
    names = list(driver.joint_map.shadow_joint_names)
    topics = {controller_topic(name): msgs.Float64 for name in driver.joint_map.command_names}
    listener = Listener(domain, {**topics, "hand/joint_states": msgs.JointState, "/diagnostics": msgs.DiagnosticArray})
    hand = listener.node.create_publisher(msgs.JointState, "/joint_states")
    command = listener.node.create_publisher(msgs.JointState, "hand/command")
    positions = np.zeros(24)
    positions[names.index("rh_FFJ1")], positions[names.index("rh_FFJ2")] = 0.2, 0.1
    positions[names.index("rh_THJ1")] = 0.4
    try:
        driver.control_shadow()  # no joint state yet: nothing may be sent
        listener.spin()
        assert not any(listener.received[topic] for topic in topics)
        hand.publish(msgs.JointState(name=names + ["ra_elbow"], position=np.append(positions, 9.0)))
        command.publish(msgs.JointState(name=["rh_FFJ0", "rh_THJ1"], position=np.array([1.0, 0.45])))
        node.spin_once(0.0)
        node.spin_once(0.0)
        driver.control_shadow()
        listener.spin()
    finally:
        node.shutdown()
        listener.node.shutdown()
    assert len(topics) == 20 and "/sh_rh_ffj0_position_controller/command" in topics
    sent = {topic: values[-1].data for topic, values in listener.received.items() if topic in topics}
    assert sent["/sh_rh_ffj0_position_controller/command"] == pytest.approx(0.3 + 2.0 * 0.08)  # rate limited
    assert sent["/sh_rh_thj1_position_controller/command"] == pytest.approx(0.45)
    assert sent["/sh_rh_ffj3_position_controller/command"] == pytest.approx(0.0)  # holds where it is
    republished = listener.received["hand/joint_states"][-1]
    assert republished.name == names and republished.position[names.index("rh_THJ1")] == 0.4


def test_bad_commands_are_rejected_and_reported() -> None:
    domain = next(_domains)
    node = create_node("hand_driver", backend="inproc", domain_id=domain)
    driver = HandDriver(node, DriverConfig(publish_images=False, randomize=False), start_timer=False)
    listener = Listener(domain, {"/diagnostics": msgs.DiagnosticArray, "hand/joint_states": msgs.JointState})
    command = listener.node.create_publisher(msgs.JointState, "hand/command")
    try:
        command.publish(msgs.JointState(name=["rh_FFJ3"], position=np.array([np.nan])))
        command.publish(msgs.JointState(name=["rh_FFJ1"], position=np.array([0.2])))
        command.publish(msgs.JointState(name=["rh_FFJ3"], position=np.array([5.0])))
        node.spin_once(0.0)
        for _ in range(5):
            driver.step()
        driver.publish_diagnostics()
        listener.spin()
    finally:
        driver.close()
        node.shutdown()
        listener.node.shutdown()
    status = listener.received["/diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == msgs.DiagnosticStatus.WARN
    assert values["nonfinite_rejected"] == "1" and values["malformed_rejected"] == "1"
    assert values["limit_hits"] == "1" and values["clamped_joints"] == "rh_FFJ3"
    assert values["watchdog_trips"] == "1" and values["watchdog_holding"] == "true"


def test_commands_from_before_a_reset_are_dropped_and_images_can_be_sparser() -> None:
    domain = next(_domains)
    node = create_node("hand_driver", backend="inproc", domain_id=domain)
    config = DriverConfig(camera_height=16, camera_width=16, randomize=False, image_period_steps=3)
    driver = HandDriver(node, config, start_timer=False)
    listener = Listener(domain, {"cameras/front/image_raw": msgs.Image, "hand/joint_states": msgs.JointState})
    command = listener.node.create_publisher(msgs.JointState, "hand/command")
    reset = listener.node.create_publisher(msgs.Bool, "hand/reset")

    def send(stamp_ns: int) -> None:
        command.publish(msgs.JointState(header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns)), name=["rh_FFJ3"],
                                        position=np.array([0.3])))
        node.spin_once(0.0)

    try:
        for _ in range(6):
            driver.step()
        reset.publish(msgs.Bool(data=True))
        node.spin_once(0.0)
        driver.step()  # resets at sim time 0.48 s, then steps to 0.56 s
        send(480_000_000)  # computed from the last state of the old episode: dropped
        send(0)  # unstamped (an operator's command): taken
        send(560_000_000)  # from the new episode's first state: taken
        listener.spin()
    finally:
        driver.close()
        node.shutdown()
        listener.node.shutdown()
    assert driver.intake.dropped_before_reset == 1 and driver.safety.counters.commands_accepted == 2
    stamps = [m.header.stamp.to_ns() for m in listener.received["cameras/front/image_raw"]]
    assert stamps == [240_000_000, 480_000_000]  # steps 3 and 6 of 7
    assert len(listener.received["hand/joint_states"]) == 7


def test_the_sim_hand_is_the_envs_hand_and_leaves_a_policys_commands_alone() -> None:
    """A policy's commands (EMA-smoothed targets from actions, as the policy node sends them) through the driver on
    the full env config move its hand exactly as ReorientBatch.step_commands moves a twin of the same seed: the
    same command path, the env's action noise, delay, backlash, pushes and timing included. The safety filter,
    on the env's command ranges and rates, changes none of them."""
    domain = next(_domains)
    node = create_node("hand_driver", backend="inproc", domain_id=domain)
    config = DriverConfig(publish_images=False, seed=11)
    driver = HandDriver(node, config, start_timer=False)
    twin = ReorientBatch(driver_env_config(config), 1, seed=11, autoreset=False)
    twin.reset(episode_seed(11, 0))  # the driver's first episode
    peer = create_node("policy", backend="inproc", domain_id=domain)
    publisher = peer.create_publisher(msgs.JointState, "hand/command")
    joint_map = driver.joint_map
    rng = np.random.default_rng(3)
    targets = twin.actuation.targets.copy()
    try:
        for step in range(40):
            actions = task.bins_to_actions(rng.integers(0, 11, (1, 20)), 11)
            targets = task.smoothed_targets(actions, twin.qpos[:, twin.actuated_qpos], targets, twin.ctrl_range,
                                            twin.config.task)
            publisher.publish(msgs.JointState(header=msgs.Header(stamp=msgs.Time.from_ns((step + 1) * 80_000_000)),
                                              name=list(joint_map.command_names),
                                              position=joint_map.ctrl_to_commands(targets[0])))
            node.spin_once(0.0)
            driver.step()
            twin.step_commands(targets)
            twin.advance_observation_noise()  # the env's step draws the period's observation noise last
            np.testing.assert_allclose(driver.sim.data.qpos, twin.datas[0].qpos, atol=1e-9, rtol=0)
            sensed = driver.sim.sensed_cube_pose()
            np.testing.assert_allclose(sensed[0], twin.reported_position[0], atol=1e-9, rtol=0)
            np.testing.assert_allclose(sensed[1], twin.reported_quaternion[0], atol=1e-9, rtol=0)
            np.testing.assert_allclose(driver.sim.sensed_fingertips(), twin.reported_fingertips[0], atol=1e-9, rtol=0)
    finally:
        driver.close()
        node.shutdown()
        peer.shutdown()
    counters = driver.safety.counters
    assert (counters.commanded_updates, counters.altered_updates, counters.limit_hits) == (40, 0, 0)
    # the sensed pose carries the env's observation noise: millimetres and a few degrees off the truth
    position, orientation = driver.sim.cube_pose()
    assert 0.0 < np.linalg.norm(sensed[0] - position) < 0.03
    assert 0.0 < rotations.angle_between(sensed[1], orientation) < 0.3
    assert driver.sim.batch.effects.delayed.any()  # the effects were on: some actuators lag a period


def test_the_sim_hands_env_follows_the_policy_and_the_switches() -> None:
    plain = driver_env_config(DriverConfig())
    assert plain.task.goal_mode == "xyz"  # config/env.yaml's
    shipped = DriverConfig(checkpoint="assets/checkpoints/policy_z.pt")
    assert driver_env_config(shipped).task.goal_mode == "z"  # cubes start upright, as the z policy trained
    assert driver_env_config(DriverConfig(checkpoint=shipped.checkpoint, goal_mode="xyz")).task.goal_mode == "xyz"
    clean = driver_env_config(DriverConfig(unmodeled_effects=False)).randomization
    assert not any(getattr(clean, name).enabled
                   for name in ("action_noise", "action_delay", "control_timing", "backlash", "random_forces"))
    assert clean.physics.enabled and clean.observation_noise.enabled
    assert not driver_env_config(DriverConfig(randomize=False)).randomization.physics.enabled
