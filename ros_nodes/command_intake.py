"""The hand driver's rules for what it is sent, without transport: the driver and replay's re-simulation feed the
same stream of hand/command, hand/enable and hand/reset through one CommandIntake, so a re-simulation applies a
recording's commands exactly as the driver did.

Rules: a command names its joints by Shadow command name (rh_<F>J0 = J1 + J2 for coupled fingers); a subset keeps
the other joints' targets; malformed or unknown names are rejected and counted. A command stamped (non-zero) at or
before the last reset was computed from the previous episode's state and is dropped. A reset request takes effect
at the start of the next control period, when the safety filter forgets the current command and holds. Every
control period the safety filter turns the latest command into the targets sent to the hand.
"""
from __future__ import annotations

import logging

import numpy as np

from ros_nodes.joint_map import JointMap
from ros_nodes.safety import SafetyFilter

logger = logging.getLogger(__name__)


class CommandIntake:
    """hand/command, hand/enable, hand/reset -> the targets (A,) of each control period, in command units."""

    def __init__(self, joint_map: JointMap, safety: SafetyFilter) -> None:
        self.joint_map = joint_map
        self.safety = safety
        self.rejected_messages = 0
        self.last_message_error = ""
        self.dropped_before_reset = 0
        self.reset_requested = False
        self.reset_at_ns: int | None = None  # driver time of the last reset

    def command(self, names: list[str], positions: np.ndarray, stamp_ns: int, now_s: float) -> None:
        """Position targets by command name, stamped with the state they were computed from (0 = unstamped)."""
        if stamp_ns and self.reset_at_ns is not None and stamp_ns <= self.reset_at_ns:
            self.dropped_before_reset += 1
            return
        positions = np.asarray(positions, dtype=np.float64)
        if len(names) != len(positions) or not names:
            self._reject(f"hand/command with {len(names)} names and {len(positions)} positions")
            return
        try:
            index = self.joint_map.command_index(names)
        except KeyError as error:
            self._reject(str(error.args[0]))
            return
        targets = np.zeros(len(self.joint_map.command_names))
        mask = np.zeros(len(targets), dtype=bool)
        targets[index] = positions
        mask[index] = True
        if not self.safety.command(targets, now_s, mask):
            logger.warning("hand/command rejected: %s", self.safety.last_rejection)

    def enable(self, enabled: bool) -> None:
        """Enable (true) or disable (false: hold position)."""
        self.safety.set_enabled(enabled)

    def request_reset(self) -> None:
        """A new episode is wanted: it starts with the next control period."""
        self.reset_requested = True

    def begin_period(self, now_ns: int) -> bool:
        """Start a control period at driver time now_ns; True when a reset is due now (the caller starts the new
        episode: a new cube on the sim, holding on the real hand)."""
        if not self.reset_requested:
            return False
        self.reset_requested = False
        self.reset_at_ns = now_ns
        self.safety.hold()
        return True

    def targets(self, current: np.ndarray, now_s: float) -> np.ndarray:
        """The safe targets (A,) for the period starting at now_s; `current` (A,) is what holding means."""
        return self.safety.update(current, now_s)

    def _reject(self, reason: str) -> None:
        self.rejected_messages += 1
        self.last_message_error = reason
        logger.warning("hand/command rejected: %s", reason)
