"""Consistency distillation for rectified flow (Song et al. 2023, arXiv 2303.01469, Alg. 2).

The student's consistency function is its x0-prediction
``f(x_t, t) = x_t - t * v_student(x_t, t)``, which meets the boundary condition
``f(x, 0) = x`` by construction. For a noise level ``t_{n+1}`` on a grid of
``intervals`` steps, one Euler step of the frozen teacher's ODE gives ``x_{t_n}``
from ``x_{t_{n+1}}``; the loss pulls ``f(x_{t_{n+1}}, t_{n+1})`` towards
``f(x_{t_n}, t_n)``, computed by the online student under stop-gradient (the
improved-techniques target, Song & Dhariwal 2023, arXiv 2310.14189, instead of
an EMA copy). Conditioning is exactly the dream's: a clean context of real frames
and the actions; only the last frame of each window is generated. One Euler step
from t = 1 is then ``f(noise, 1)``: a frame in one network evaluation.
"""

from dataclasses import dataclass

import torch

from worldenv.config import ConfigError
from worldenv.diffusion.flow import add_noise
from worldenv.distill.base import DistillConfig, DistillTask
from worldenv.training.latent_windows import head_losses


@dataclass
class ConsistencyConfig(DistillConfig):
    intervals: int = 16  # the teacher's ODE on [0, 1] in this many Euler steps

    def validate(self) -> None:
        super().validate()
        if self.intervals < 1:
            raise ConfigError(f"intervals: expected a positive integer, got {self.intervals}")


class ConsistencyDistillation(DistillTask[ConsistencyConfig]):
    method = "consistency"

    def loss(self, model, batch: int, generator: torch.Generator):
        c = self.config
        device = next(model.parameters()).device
        teacher = self.teacher_on(device)
        data, index = self.windows.draw(batch, generator, device)
        B = index.shape[0]
        n = torch.randint(0, c.intervals, (B,), generator=generator)
        t_high, t_low = ((n + 1) / c.intervals).to(device), (n / c.intervals).to(device)
        noise = torch.randn(data.x0[:, -1].shape, generator=generator).to(device)
        x_high = add_noise(data.x0[:, -1], noise, t_high)  # (B, N, C)
        with torch.no_grad():
            v_teacher = self.teacher_velocity(
                teacher, *self.with_last(data, x_high, t_high), data.actions, data.segments, data.past_actions
            )
            x_low = x_high + (t_low - t_high)[:, None, None] * v_teacher
            v_target = (
                model(*self.with_last(data, x_low, t_low), data.actions, segments=data.segments, past_actions=data.past_actions)
                .velocity[:, -1]
                .float()
            )
            target = x_low - t_low[:, None, None] * v_target
        out = model(*self.with_last(data, x_high, t_high), data.actions, segments=data.segments, past_actions=data.past_actions)
        prediction = x_high - t_high[:, None, None] * out.velocity[:, -1].float()
        consistency = (prediction - target).square().mean()
        reward, termination = head_losses(out, self.context_heads(data), c.termination_pos_weight)
        loss = consistency + c.head_weight * (reward + 0.2 * termination)
        return loss, {"consistency": consistency.detach(), "reward_mse": reward.detach(), "termination_bce": termination.detach()}
