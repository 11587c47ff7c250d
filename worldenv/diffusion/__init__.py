"""Rectified-flow noising process, its training loss, and ODE samplers as pure functions."""

from worldenv.diffusion.flow import (
    add_noise,
    append_dims,
    flow_matching_loss,
    noise_from_velocity,
    sample_training_times,
    timesteps,
    velocity_target,
    x0_from_velocity,
)
from worldenv.diffusion.samplers import (
    SAMPLERS,
    VelocityFn,
    sample,
    sample_dpm_solver,
    sample_euler,
    sample_heun,
)

__all__ = [
    "SAMPLERS",
    "VelocityFn",
    "add_noise",
    "append_dims",
    "flow_matching_loss",
    "noise_from_velocity",
    "sample",
    "sample_dpm_solver",
    "sample_euler",
    "sample_heun",
    "sample_training_times",
    "timesteps",
    "velocity_target",
    "x0_from_velocity",
]
