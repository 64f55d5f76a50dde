"""The driver's safety layer, the same for every backend: limits, rate limit, NaN/inf rejection, watchdog, enable.

Commands come in whenever the policy sends them (command()); once per control period the driver asks for the target
to apply (update()) with the hand's current position. Everything is in command units (Shadow's, radians).

The limits a trained policy respects are the env's own (trained_rate_limits, JointMap.command_limits): in normal
operation the filter then passes the policy's commands through unchanged and acts only on what the env could never
have commanded. How often it changed a command is counted (altered_updates of commanded_updates).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.config import TaskConfig


@dataclass
class SafetyCounters:
    """What the safety layer did since start: for /diagnostics."""

    commands_accepted: int = 0
    limit_hits: int = 0  # accepted commands with at least one target clamped to its joint's limits
    nonfinite_rejected: int = 0  # commands thrown away for a NaN or infinity
    watchdog_trips: int = 0
    rate_limited_updates: int = 0  # control periods in which at least one target moved at the rate limit
    commanded_updates: int = 0  # control periods with a command to follow (enabled, not holding)
    altered_updates: int = 0  # ... in which the target sent differs from the command (clamped or rate limited)
    clamped_joints: set[str] = field(default_factory=set)

    @property
    def altered_fraction(self) -> float:
        """Share of commanded control periods in which the filter changed the command (0 before any)."""
        return self.altered_updates / self.commanded_updates if self.commanded_updates else 0.0


def trained_rate_limits(command_limits: np.ndarray, task: TaskConfig) -> np.ndarray:
    """The fastest (A,) rad/s each command moves in the env: its EMA moves a target by action_ema x (new target -
    old target), both inside the control range, so by at most action_ema x the range's width per control period."""
    width = command_limits[:, 1] - command_limits[:, 0]
    return task.action_ema * width / (task.physics_timestep * task.substeps)


class SafetyFilter:
    """Turns raw position commands (A,) into the targets (A,) sent to the hand, one control period at a time."""

    def __init__(
        self,
        names: tuple[str, ...],
        lower: np.ndarray,
        upper: np.ndarray,
        max_rate_rad_s: float | np.ndarray,
        control_period_s: float,
        watchdog_periods: int = 3,
        enabled: bool = True,
    ) -> None:
        self.names = tuple(names)
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        if self.lower.shape != (len(self.names),) or self.upper.shape != self.lower.shape:
            raise ValueError(f"limits must have shape ({len(self.names)},), got {self.lower.shape}, {self.upper.shape}")
        if np.any(self.lower > self.upper):
            raise ValueError("every lower limit must be <= its upper limit")
        rate = np.broadcast_to(np.asarray(max_rate_rad_s, dtype=np.float64), self.lower.shape)
        if not np.all(rate > 0) or not control_period_s > 0 or watchdog_periods < 1:
            raise ValueError("max_rate_rad_s (one value or one per joint) and control_period_s must be > 0 and "
                             "watchdog_periods >= 1")
        self.max_rate_rad_s = rate.copy()
        self.control_period_s = float(control_period_s)
        self.watchdog_s = watchdog_periods * self.control_period_s
        self.enabled = enabled
        self.counters = SafetyCounters()
        self.desired: np.ndarray | None = None  # last good command, clamped; None = hold
        self.requested: np.ndarray | None = None  # the same before clamping: what the command asked for
        self.output: np.ndarray | None = None  # target sent in the last period
        self.last_command_s: float | None = None
        self.last_update_s: float | None = None
        self.watchdog_tripped = False
        self.last_rejection = ""
        self._capture_hold = True  # the next update holds wherever the hand is

    def command(self, targets: np.ndarray, now_s: float, mask: np.ndarray | None = None) -> bool:
        """Take new targets (A,) at time now_s (only the entries where `mask` is True); False if rejected."""
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != self.lower.shape:
            raise ValueError(f"targets must have shape {self.lower.shape}, got {targets.shape}")
        mask = np.ones(targets.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if not np.all(np.isfinite(targets[mask])):
            self.counters.nonfinite_rejected += 1
            bad = [self.names[i] for i in np.flatnonzero(mask & ~np.isfinite(targets))]
            self.last_rejection = f"non-finite target for {bad}"
            return False
        clamped = np.clip(targets, self.lower, self.upper)
        hit = mask & (clamped != targets)
        if hit.any():
            self.counters.limit_hits += 1
            self.counters.clamped_joints.update(self.names[i] for i in np.flatnonzero(hit))
        if self.desired is None:
            # joints a partial command leaves out keep their last target; NaN = "where the hand is" until one exists
            self.desired = self.output.copy() if self.output is not None else np.full(targets.shape, np.nan)
            self.requested = self.desired.copy()
        self.desired = np.where(mask, clamped, self.desired)
        self.requested = np.where(mask, targets, self.requested)
        self.counters.commands_accepted += 1
        self.last_command_s = now_s
        if self.watchdog_tripped:
            self.watchdog_tripped = False
        return True

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable; while disabled the hand holds where it was; enabling waits for a fresh command."""
        if enabled != self.enabled:
            self.desired = None
            self._capture_hold = True
        self.enabled = enabled

    def hold(self) -> None:
        """Forget the current command: hold position until the next one (after a reset, for example)."""
        self.desired = None
        self._capture_hold = True

    def update(self, current: np.ndarray, now_s: float) -> np.ndarray:
        """The targets (A,) to apply for the control period starting at now_s, given the hand's position (A,)."""
        current = np.clip(np.asarray(current, dtype=np.float64), self.lower, self.upper)
        elapsed = self.control_period_s if self.last_update_s is None else max(0.0, now_s - self.last_update_s)
        self.last_update_s = now_s
        stale = self.last_command_s is None or now_s - self.last_command_s > self.watchdog_s + 1e-9
        if self.desired is not None and stale:
            self.counters.watchdog_trips += 1
            self.watchdog_tripped = True
            self.desired = None
            self._capture_hold = True
        if self._capture_hold or self.output is None:
            self.output = current.copy()
            self._capture_hold = False
        if not self.enabled or self.desired is None:
            return self.output.copy()
        previous = self.output
        desired = np.where(np.isnan(self.desired), previous, self.desired)
        step = self.max_rate_rad_s * max(elapsed, 1e-9)
        too_fast = np.abs(desired - previous) > step
        if too_fast.any():
            self.counters.rate_limited_updates += 1
        # a target within reach is sent exactly as commanded, not as previous + difference (rounding)
        self.output = np.clip(np.where(too_fast, previous + np.clip(desired - previous, -step, step), desired),
                              self.lower, self.upper)
        requested = np.where(np.isnan(self.requested), previous, self.requested)  # type: ignore[arg-type]
        self.counters.commanded_updates += 1
        self.counters.altered_updates += int(np.any(self.output != requested))
        return self.output.copy()
