"""Test-wide settings: headless rendering through EGL (Mesa on the CPU) unless the caller chose otherwise."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
