"""Self-Forcing (Huang et al. 2025, arXiv 2506.08009): the student is trained on its
own autoregressive rollouts, exactly as it dreams at inference.

From a window's first real frames (committed to a KV cache, as ``WorldModel.reset``
does), the student generates ``rollout_frames`` frames one after another, each in
``sampling_steps`` Euler steps from noise under its recorded action, and commits each
clean, detached latent to the cache before the next: the served dream's own step
(``dream_step``), committing the sample, or with ``commit: frame`` the latent of its
decoded frame, as the served dream commits (``worldenv/serving.py``). Every generated
frame is then judged by distribution matching (``dmd.py``) in the context the
student itself produced: the teacher and the fake score see the real frames
followed by the student's own previous frames. So the student learns to continue
its own imperfect past, the exposure bias that makes teacher-forced models drift.
Gradients flow through each frame's generating evaluations, not through the cache
(what is committed is detached).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from worldenv.checkpoint import load_bundle
from worldenv.config import ConfigError
from worldenv.distill.dmd import DMDConfig, DMDDistillation
from worldenv.dream_step import dream_step, prime_cache
from worldenv.memory import FastPaths
from worldenv.nn.backbone import Backbone
from worldenv.nn.tokenizer import Tokenizer
from worldenv.serving import COMMITS
from worldenv.training.latent_windows import head_losses
from worldenv.world_model import frames_to_latents, latents_to_frames, load_tokenizer


@dataclass
class SelfForcingConfig(DMDConfig):
    rollout_frames: int = 3  # frames the student dreams after the real context, each on its own previous ones
    commit: str = "latent"  # what each rolled-out frame leaves in the cache; as the dream will serve it

    def validate(self) -> None:
        super().validate()
        if self.rollout_frames < 1:
            raise ConfigError(f"rollout_frames: expected a positive integer, got {self.rollout_frames}")
        if self.commit not in COMMITS:
            raise ConfigError(f"commit: expected one of {COMMITS}, got {self.commit!r}")


class SelfForcingDistillation(DMDDistillation[SelfForcingConfig]):
    method = "self-forcing"

    def __init__(self, config: SelfForcingConfig):
        super().__init__(config)
        if self.teacher.config.memory_frames:
            # The rollout primes its cache from one run of real frames; sinks and memory
            # from earlier in the episode would need the whole episode replayed.
            raise ConfigError(
                f"self-forcing: teacher {config.teacher!r} has long-term memory "
                f"(memory_frames={self.teacher.config.memory_frames}), which Self-Forcing does not train yet"
            )
        self.tokenizer = load_tokenizer(load_bundle(Path(config.bundle))) if config.commit == "frame" else None
        if config.rollout_frames >= self.windows.length:
            raise ConfigError(
                f"rollout_frames: expected fewer than the teacher's {self.windows.length}-frame window "
                f"(at least one real context frame), got {config.rollout_frames}"
            )

    def loss(self, model, batch: int, generator: torch.Generator):
        c = self.config
        parts = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
        device = next(parts.parameters()).device
        teacher = self.teacher_on(device)
        data, index = self.windows.draw(batch, generator, device)
        B, L = index.shape
        real = L - c.rollout_frames  # real context frames
        shape = data.x0[:, -1].shape
        noises = [torch.randn(shape, generator=generator).to(device) for _ in range(c.rollout_frames)]
        renoises = [torch.randn(shape, generator=generator).to(device) for _ in range(c.rollout_frames)]
        levels = (c.min_t + (1 - 2 * c.min_t) * torch.rand(c.rollout_frames, B, generator=generator)).to(device)
        update_student = bool(torch.randint(0, c.fake_updates, (), generator=generator) == 0)  # see dmd.py
        student_grad = update_student and torch.is_grad_enabled()

        if self.tokenizer is not None:
            self.tokenizer.to(device)
        samples, committed = self_rollout(
            parts.student,
            data.x0[:, :real],
            data.actions,
            noises,
            student_grad,
            data.past_actions,
            self.tokenizer,
            c.sampling_steps,
        )
        matching = fake_loss = teacher_flow = torch.zeros((), device=device)
        for k, sample in enumerate(samples):
            # Judged in the context the student made: the real frames, then what it committed of its own.
            context = torch.cat([data.x0[:, :real], *(c[:, None] for c in committed[:k])], dim=1)
            terms = self.match(
                parts,
                teacher,
                context,
                data.actions[:, : real + k + 1],
                sample,
                levels[k],
                renoises[k],
                past_actions=data.past_actions,
            )
            matching, fake_loss, teacher_flow = (
                total + term / c.rollout_frames for total, term in zip((matching, fake_loss, teacher_flow), terms)
            )

        # The heads keep training on real frames, in a clean pass as at the cache commit.
        with torch.set_grad_enabled(student_grad):
            out = parts.student(data.x0, torch.zeros(B, L, device=device), data.actions)
        reward, termination = head_losses(out, data, c.termination_pos_weight)
        return self.total(matching, fake_loss, teacher_flow, reward, termination)


def self_rollout(
    student: Backbone,
    context: torch.Tensor,
    actions: torch.Tensor,
    noises: list[torch.Tensor],
    grad: bool,
    past_actions: torch.Tensor | None = None,
    tokenizer: Tokenizer | None = None,
    steps: int = 1,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The student dreams ``len(noises)`` frames after the real ``context`` (B, T, N, C), each
    from its noise (B, N, C) under ``actions[:, T + k]`` in ``steps`` Euler steps, exactly
    as ``WorldModel`` dreams (``dream_step``): context committed to a fresh cache, each
    frame's clean, detached latent committed before the next; with ``tokenizer``, the
    latent of its decoded frame (``commit: frame``). With ``grad`` the frames carry
    gradients through their generating evaluations. ``past_actions``: the actions before
    the context (with an action history; zeros if None). Returns the frames (float32) and
    what was committed of each."""
    B, T = context.shape[:2]
    device, dtype = context.device, context.dtype
    cache = student.new_cache(B, device, dtype)
    state = student.new_state(B, device, dtype, past_actions)
    with torch.no_grad():
        prime_cache(student, context, actions[:, :T], cache, state, FastPaths.for_device(device))

    keep: Callable[[torch.Tensor], torch.Tensor] | None = None
    if tokenizer is not None:

        def commit_frame(latent: torch.Tensor) -> torch.Tensor:  # ``commit: frame``: the decoded frame, encoded again
            return frames_to_latents(tokenizer, latents_to_frames(tokenizer, latent.to(dtype)), dtype)

        keep = commit_frame

    fast = FastPaths.for_device(device, gradients=grad)
    samples, committed = [], []
    for k, noise in enumerate(noises):
        with torch.set_grad_enabled(grad):
            step = dream_step(student, cache, state, actions[:, T + k], noise, "euler", steps, keep=keep, fast=fast)
        samples.append(step.latent)
        committed.append(step.committed)
    return samples, committed
