"""What a policy training run logs per update, and the panels of its curves.png (sim.metrics_log writes them)."""
from __future__ import annotations

from sim.metrics_log import MetricsLayout, Panel

STEPS = ("env_steps", "env steps", 1.0)
HOURS = ("train_seconds", "training hours", 1.0 / 3600.0)  # x: hours of training time


def _panel(title: str, key: str, x: tuple[str, str, float] = STEPS) -> Panel:
    return Panel(title, (key,), x=x[0], x_label=x[1], x_scale=x[2])


POLICY_METRICS = MetricsLayout(
    step_key="update",
    integer_keys=("update", "env_steps", "episodes", "episodes_finished"),
    panels=(
        _panel("consecutive successes (recent episodes)", "recent_successes_mean"),
        _panel("consecutive successes vs wall time", "recent_successes_mean", HOURS),
        _panel("episode return (recent)", "recent_return_mean"),
        _panel("drop rate (recent)", "recent_drop_rate"),
        _panel("policy loss", "policy_loss"),
        _panel("value loss (normalized)", "value_loss"),
        _panel("entropy", "entropy"),
        _panel("approx KL", "approx_kl"),
        _panel("samples / s", "samples_per_s"),
        _panel("episode length (recent, steps)", "recent_length_mean"),
        # ADR runs only: a line per boundary (0 = nominal, 1 = its hard limit), and the summed log widths
        _panel("ADR boundaries: fraction of the way to the limit", "adr/*"),
        _panel("ADR entropy (nats per parameter)", "adr_entropy"),
        # the resumable keys set by hand, so a campaign's curves show when each changed (unset: no line)
        _panel("xyz goal curriculum: max goal angle (rad)", "schedule/goal_max_angle_rad"),
        Panel("ADR thresholds set by hand (consecutive successes)",
              ("schedule/adr_high_threshold", "schedule/adr_low_threshold"), x=STEPS[0], x_label=STEPS[1]),
        Panel("hand-set schedules", ("schedule/learning_rate", "schedule/entropy_coef", "schedule/gamma"),
              x=STEPS[0], x_label=STEPS[1], log_y=True),
    ),
)
