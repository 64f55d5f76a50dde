"""policy node on inproc: observation and targets equal the sim's, LSTM state kept and reset, missing inputs, bad
checkpoints."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.inference import InferencePolicy
from ros_nodes import msgs
from ros_nodes.bench_system import write_untrained_checkpoint
from ros_nodes.hand_driver import quaternion_message
from ros_nodes.policy import PolicyNode, main
from ros_nodes.transport import create_node
from sim.batch import ReorientBatch
from sim.config import load_env_config

PERIOD_NS = 80_000_000
_DOMAINS = itertools.count(7100)


class Rig:
    """The policy node and a test node standing in for driver, goal manager and /clock, on one inproc domain."""

    def __init__(self, checkpoint: Path, **parameters: object) -> None:
        domain = next(_DOMAINS)
        self.policy_node = create_node("policy", backend="inproc", domain_id=domain,
                                       parameters={"use_sim_time": True, "checkpoint": str(checkpoint), **parameters})
        self.policy = PolicyNode(self.policy_node)
        self.node = create_node("rig", backend="inproc", domain_id=domain)
        node = self.node
        self.clock = node.create_publisher(msgs.Clock, "/clock")
        self.joints = node.create_publisher(msgs.JointState, "hand/joint_states")
        self.pose = node.create_publisher(msgs.PoseStamped, "object/pose")
        self.goal = node.create_publisher(msgs.QuaternionStamped, "goal/orientation")
        self.status = node.create_publisher(msgs.String, "trial/status")
        self.commands: list[msgs.JointState] = []
        self.diagnostics: list[msgs.DiagnosticArray] = []
        node.create_subscription(msgs.JointState, "hand/command", self.commands.append)
        node.create_subscription(msgs.DiagnosticArray, "/diagnostics", self.diagnostics.append)
        self.joint_map = self.policy.core.joint_map

    def publish_state(self, stamp_ns: int, batch: ReorientBatch, pose_stamp_ns: int | None = None) -> None:
        """/clock, then the batch's joint angles (Shadow names and units), cube pose and goal, as the driver would."""
        stamp = msgs.Time.from_ns(stamp_ns)
        qpos, index = batch.qpos[0], batch.index
        self.clock.publish(msgs.Clock(clock=stamp))
        self.joints.publish(msgs.JointState(
            header=msgs.Header(stamp=stamp), name=list(self.joint_map.shadow_joint_names),
            position=self.joint_map.joints_to_shadow(qpos[index.hand_qpos]), velocity=np.zeros(0), effort=np.zeros(0)))
        position = qpos[index.cube_qpos: index.cube_qpos + 3]
        self.pose.publish(msgs.PoseStamped(
            header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns if pose_stamp_ns is None else pose_stamp_ns)),
            pose=msgs.Pose(position=msgs.Point(x=position[0], y=position[1], z=position[2]),
                           orientation=quaternion_message(qpos[index.cube_qpos + 3: index.cube_qpos + 7]))))
        self.goal.publish(msgs.QuaternionStamped(header=msgs.Header(stamp=stamp),
                                                 quaternion=quaternion_message(batch.goal[0])))

    def publish_status(self, trial: int, state: str) -> None:
        self.status.publish(msgs.String(data=json.dumps({"trial": trial, "state": state, "successes": 0})))

    def spin(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            self.policy_node.spin_once(0.01)
            self.node.spin_once(0.01)

    def close(self) -> None:
        self.policy_node.shutdown()
        self.node.shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_untrained_checkpoint(tmp_path_factory.mktemp("policy") / "policy.pt", dense_size=32, lstm_size=16,
                                      goal_mode="z", seed=3)


def noise_free_batch(seed: int) -> ReorientBatch:
    batch = ReorientBatch(load_env_config().with_options(goal_mode="z", randomize=False), 1, seed=seed, autoreset=False)
    batch.reset(seed)
    return batch


def test_observation_targets_and_lstm_state_match_the_sim(checkpoint: Path) -> None:
    batch = noise_free_batch(seed=5)
    rig = Rig(checkpoint)
    reference = InferencePolicy.load(checkpoint)
    policy = rig.policy
    try:
        rig.publish_status(1, "running")
        stamp = 0
        for episode in range(2):
            for step in range(4):
                stamp += PERIOD_NS
                rig.publish_state(stamp, batch)
                rig.spin()
                assert len(rig.commands) == policy.commands_published, "one command per tick"
                command = rig.commands[-1]
                assert command.header.stamp.to_ns() == stamp
                assert command.name == list(rig.joint_map.command_names)
                # randomization off: the batch's policy observation is noise free
                expected_observation = batch.policy_observation()[0]
                np.testing.assert_allclose(policy.last_observation, expected_observation, atol=1e-5, rtol=0)
                reference.act(expected_observation[None])
                for node_tensor, reference_tensor in zip(policy.core.policy.state, reference.state):
                    torch.testing.assert_close(node_tensor, reference_tensor, atol=1e-5, rtol=0)
                assert policy.last_action.dtype == np.int64 and policy.last_action.shape == (20,)
                batch.step(policy.last_action[None])
                # no delay, backlash or action noise: what the batch applies is its EMA target
                np.testing.assert_allclose(rig.joint_map.commands_to_ctrl(np.asarray(command.position)),
                                           batch.actuation.applied[0], atol=1e-9, rtol=0)
                if step == 3:
                    # the carried state is not what a fresh state would give on the same input
                    fresh = InferencePolicy.load(checkpoint)
                    fresh.act(expected_observation[None])
                    assert not torch.allclose(fresh.state[1], policy.core.policy.state[1], atol=1e-4)
            # a new trial in ROS is a new episode in the sim: zero LSTM state, EMA restarted at the hand's position
            rig.publish_status(2 + episode, "running")
            rig.spin()
            assert all(float(t.abs().max()) == 0.0 for t in policy.core.policy.state)
            assert policy.lstm_resets == 2 + episode  # the first status counts too
            reference.reset(1)
            batch.reset_envs(np.array([0]))
        assert policy.ticks == policy.commands_published == 8 and policy.late_ticks == 0
    finally:
        rig.close()


def test_missing_or_stale_inputs_publish_nothing_and_say_why(checkpoint: Path) -> None:
    batch = noise_free_batch(seed=2)
    rig = Rig(checkpoint)
    try:
        rig.clock.publish(msgs.Clock(clock=msgs.Time.from_ns(PERIOD_NS)))
        rig.spin()
        rig.clock.publish(msgs.Clock(clock=msgs.Time.from_ns(2 * PERIOD_NS)))  # the first tick waited in vain
        rig.spin()
        assert not rig.commands
        status = rig.diagnostics[-1].status[0]
        assert status.level == msgs.DiagnosticStatus.WARN
        assert status.message == "no joint states yet for 24 joints (rh_WRJ2, rh_WRJ1, rh_FFJ4 ...)", status.message

        # the pose is stamped 5 periods before the tick: the tick waits for a pose of its own time, then runs late
        # (when the next one is due) without one
        rig.publish_state(3 * PERIOD_NS, batch, pose_stamp_ns=-2 * PERIOD_NS)
        rig.spin()
        assert not rig.commands and rig.policy.pending_tick_ns == 3 * PERIOD_NS and rig.policy.late_ticks == 2
        assert rig.diagnostics[-1].status[0].message == "object pose stale: 0.320 s old"  # the tick at 2 periods
        rig.clock.publish(msgs.Clock(clock=msgs.Time.from_ns(4 * PERIOD_NS)))
        rig.spin()
        assert not rig.commands and rig.policy.late_ticks == 3
        assert rig.policy.last_skip == "object pose stale: 0.400 s old"

        # fresh inputs answer the waiting tick (4 periods); the tick of 5 periods is answered by them already (one
        # command per state), and the one after runs on time
        rig.publish_state(5 * PERIOD_NS, batch)
        rig.spin()
        assert [c.header.stamp.to_ns() for c in rig.commands] == [5 * PERIOD_NS]
        assert rig.diagnostics[-1].status[0].level == msgs.DiagnosticStatus.OK
        rig.publish_state(6 * PERIOD_NS, batch)
        rig.spin()
        assert [c.header.stamp.to_ns() for c in rig.commands] == [5 * PERIOD_NS, 6 * PERIOD_NS]
        assert rig.policy.late_ticks == 3

        rig.publish_status(1, "resetting")  # between trials nothing is sent, and the goal is forgotten
        rig.publish_state(7 * PERIOD_NS, batch)
        rig.spin()
        assert len(rig.commands) == 2
        assert rig.diagnostics[-1].status[0].message == "trial 1 is resetting"
        values = {kv.key: kv.value for kv in rig.diagnostics[-1].status[0].values}
        assert values["skipped_no_joint_states"] == "1" and values["skipped_stale_pose"] == "2"
        assert values["commands_published"] == "2" and values["last_command_stamp_ns"] == str(6 * PERIOD_NS)
    finally:
        rig.close()


def test_bad_checkpoints_stop_the_node_with_a_clear_message(tmp_path: Path, checkpoint: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("INHAND_TRANSPORT", "inproc")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(checkpoint.read_bytes()[:-100])
    mismatched = write_untrained_checkpoint(tmp_path / "xyz.pt", dense_size=8, lstm_size=4)
    env_yaml = tmp_path / "env.yaml"
    env_yaml.write_text("task:\n  action_bins: 5\n")
    cases = [
        ([f"checkpoint:={tmp_path / 'none.pt'}"], "none.pt: checkpoint file not found"),
        ([f"checkpoint:={corrupt}"], "corrupt.pt: not a readable checkpoint"),
        ([f"checkpoint:={mismatched}", f"env_config:={env_yaml}"],
         "the policy does not fit this hand and task: it has {'num_bins': 11}, the node needs {'num_bins': 5}"),
    ]
    for parameters, message in cases:
        argv = ["--ros-args", *itertools.chain.from_iterable(("-p", p) for p in parameters)]
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_sensed_fingertips_make_the_observation_the_envs_noisy_one(checkpoint: Path) -> None:
    """With fingertips: sensed, the node's observation from the sensed fingertips and pose (as the sim driver
    publishes them) is the env's own noisy policy observation; a tick waits for all five fingertips of its stamp."""
    from ros_nodes.hand_driver import pose_message
    from sim.scene import FINGERTIP_NAMES

    batch = ReorientBatch(load_env_config().with_options(goal_mode="z"), 1, seed=8, autoreset=False)
    batch.reset(8)
    rig = Rig(checkpoint, fingertips="sensed")
    tips = {name: rig.node.create_publisher(msgs.PoseStamped, f"hand/fingertips/{name}") for name in FINGERTIP_NAMES}
    try:
        rig.publish_status(1, "running")
        stamp_ns = PERIOD_NS
        rig.publish_state(stamp_ns, batch)  # the true pose ...
        stamp = msgs.Time.from_ns(stamp_ns)
        rig.pose.publish(pose_message(batch.reported_position[0], batch.reported_quaternion[0], stamp))  # ... sensed
        for name, position in list(zip(FINGERTIP_NAMES, batch.reported_fingertips[0]))[:4]:
            tips[name].publish(pose_message(position, np.array([1.0, 0.0, 0.0, 0.0]), stamp))
        rig.spin()
        assert rig.commands == []  # the thumb's marker of this stamp is missing: no command yet
        tips["th"].publish(pose_message(batch.reported_fingertips[0, 4], np.array([1.0, 0.0, 0.0, 0.0]), stamp))
        rig.spin()
        assert len(rig.commands) == 1
        np.testing.assert_allclose(rig.policy.last_observation, batch.policy_observation()[0], atol=1e-6, rtol=0)
        # the env's observation noise was on: the kinematic fingertips would have differed
        assert np.abs(batch.reported_fingertips[0] - batch.fingertips[0]).max() > 1e-4
    finally:
        rig.close()
