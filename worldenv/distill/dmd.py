"""Distribution matching distillation (DMD: Yin et al. 2024, arXiv 2311.18828; DMD2:
Yin et al. 2024, arXiv 2405.14867), for rectified flow and action-conditioned frames.

The student maps noise to a frame in one evaluation, ``x = noise - v_student(noise, 1)``,
given the clean context and the actions. Its samples are re-noised to a random level
``t``; there the frozen teacher (the real score) and a *fake* score, a copy of the
teacher trained online by flow matching on the student's samples, each predict the
clean frame. Their difference is the gradient of the KL divergence between the
student's and the teacher's frame distributions (DMD eq. 7, with DMD's normaliser
``mean |x - x0_real|``), applied to ``x`` through a stop-gradient target. As in DMD2,
there is no regression loss on teacher samples.

Both networks live in one module so that the training loop's single optimizer, EMA
and checkpoints serve them: the student loss cannot reach the fake score (its
prediction is taken without gradient) and the fake score's loss cannot reach the
student (it trains on detached samples). Only the student is exported. Since the
student sits out most steps (``fake_updates``), data-parallel runs would need DDP's
``find_unused_parameters``; this method is single-process for now.
"""

import copy
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from worldenv.config import ConfigError
from worldenv.diffusion.flow import add_noise
from worldenv.distill.base import DistillConfig, DistillTask, keep_blocks
from worldenv.nn.backbone import Backbone, Segments
from worldenv.training.latent_windows import head_losses


@dataclass
class DMDConfig(DistillConfig):
    fake_weight: float = 1.0  # weight of the fake score's flow-matching loss
    # DMD2's two time-scale rule: the fake score must track the student's distribution, so
    # the student is updated on one step in this many (drawn per step), the fake score on all.
    fake_updates: int = 5
    min_t: float = 0.02  # re-noising levels are drawn from [min_t, 1 - min_t]: both scores are poor at the ends

    def validate(self) -> None:
        super().validate()
        if self.fake_updates < 1:
            raise ConfigError(f"fake_updates: expected a positive integer, got {self.fake_updates}")
        if not 0.0 <= self.min_t < 0.5:
            raise ConfigError(f"min_t: expected a value in [0, 0.5), got {self.min_t}")


class StudentAndFakeScore(nn.Module):
    def __init__(self, student: Backbone, teacher: Backbone):
        super().__init__()
        self.student = copy.deepcopy(student)
        self.fake = copy.deepcopy(teacher)  # the fake score starts as the real one: their difference starts at zero

    def forward(self, *args):  # the loop calls the task's loss with this module; the parts are used directly
        raise RuntimeError("StudentAndFakeScore: use .student or .fake")


DMDConfigT = TypeVar("DMDConfigT", bound=DMDConfig)


class DMDDistillation(DistillTask[DMDConfigT]):
    method = "dmd"

    def make_trainable(self) -> nn.Module:
        return StudentAndFakeScore(keep_blocks(self.student_start, self.config.student_layers), self.teacher)

    def loss(self, model, batch: int, generator: torch.Generator):
        c = self.config
        parts = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        device = next(parts.parameters()).device
        teacher = self.teacher_on(device)
        data, index = self.windows.draw(batch, generator, device)
        B = index.shape[0]
        ones = torch.ones(B, device=device)
        noise = torch.randn(data.x0[:, -1].shape, generator=generator).to(device)
        t = (c.min_t + (1 - 2 * c.min_t) * torch.rand(B, generator=generator)).to(device)
        renoise = torch.randn(data.x0[:, -1].shape, generator=generator).to(device)
        update_student = bool(torch.randint(0, c.fake_updates, (), generator=generator) == 0)  # a CPU draw: no sync

        # Without gradient on the other steps: the student's parameters then get no .grad
        # at all, so the optimizer leaves them alone (a zero loss would still move Adam).
        with torch.set_grad_enabled(update_student and torch.is_grad_enabled()):
            out = parts.student(
                *self.with_last(data, noise, ones), data.actions, segments=data.segments, past_actions=data.past_actions
            )
            sample = noise - out.velocity[:, -1].float()  # (B, N, C): a frame in one evaluation
        matching, fake_loss, teacher_flow = self.match(
            parts, teacher, data.x0[:, :-1], data.actions, sample, t, renoise, data.segments, data.past_actions
        )
        reward, termination = head_losses(out, self.context_heads(data), c.termination_pos_weight)
        return self.total(matching, fake_loss, teacher_flow, reward, termination)

    def total(self, matching, fake_loss, teacher_flow, reward, termination) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's loss (the matching gradient, the fake score's flow loss, the heads) and
        its logged metrics; ``fake_gain``: how much better the fake score fits the student's
        samples than the teacher does."""
        c = self.config
        loss = matching + c.fake_weight * fake_loss + c.head_weight * (reward + 0.2 * termination)
        return loss, {
            "matching": matching.detach(),
            "fake_flow": fake_loss.detach(),
            "fake_gain": (teacher_flow - fake_loss).detach(),
            "reward_mse": reward.detach(),
            "termination_bce": termination.detach(),
        }

    def match(
        self,
        parts: StudentAndFakeScore,
        teacher: Backbone,
        context: torch.Tensor,
        actions: torch.Tensor,
        sample: torch.Tensor,
        t: torch.Tensor,
        renoise: torch.Tensor,
        segments: Segments | None = None,
        past_actions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distribution matching of ``sample`` (B, N, C), the frame after the clean ``context``
        (B, T, N, C) under ``actions`` (B, T + 1, A), re-noised to ``t`` with ``renoise``.
        Returns the student's matching loss, the fake score's flow-matching loss on the
        sample, and the teacher's loss on the same regression (for the fake score to beat)."""
        x_t = add_noise(sample.detach(), renoise, t)
        flow = renoise - sample.detach()  # the velocity both scores regress at (x_t, t)
        window = self.window(context, x_t, t)
        with torch.no_grad():
            v_real = self.teacher_velocity(teacher, *window, actions, segments, past_actions)
        # One pass of the fake score serves both: its prediction (detached) for the student's
        # gradient, and its flow-matching loss on the student's samples for its own training.
        v_fake = parts.fake(*window, actions, segments=segments, past_actions=past_actions).velocity[:, -1].float()
        with torch.no_grad():
            real, fake = x_t - t[:, None, None] * v_real, x_t - t[:, None, None] * v_fake
            weight = (sample - real).abs().mean(dim=(1, 2), keepdim=True).clamp_min(1e-4)
            target = sample - (fake - real) / weight
        matching = 0.5 * (sample - target).square().mean()
        return matching, (v_fake - flow).square().mean(), (v_real - flow).square().mean()

    def export(self, ema_model: nn.Module, metadata: dict) -> None:
        if not isinstance(ema_model, StudentAndFakeScore):  # what make_trainable gave the loop
            raise TypeError(f"{self.method}: expected the trained StudentAndFakeScore, got {type(ema_model).__name__}")
        super().export(ema_model.student, metadata)
