"""What every distillation method shares: the frozen teacher, the student (a copy of
the teacher to start from), windows of latents with a clean context and a last frame
to generate, the heads' losses, and the export into the bundle."""

import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

import torch
from torch import nn

from worldenv.checkpoint import load_bundle, update_bundle
from worldenv.config import ConfigError
from worldenv.diffusion.flow import guide
from worldenv.nn.backbone import Backbone, Segments
from worldenv.training.data import DataConfig
from worldenv.training.latent_windows import LatentBatch, LatentWindows
from worldenv.training.loop import TrainConfig
from worldenv.world_model import load_backbone


@dataclass
class DistillConfig:
    data: DataConfig
    bundle: str  # holds the tokenizer and the teacher; the student is written into it
    run: str
    teacher: str = "teacher"  # the bundle component to distil
    # Euler steps per frame the student is made for: Self-Forcing rolls out with this many
    # (``dream_step``); every method records it with the student.
    sampling_steps: int = 1
    head_weight: float = 1.0  # reward and termination heads keep training on the data
    termination_pos_weight: float = 1.0  # weight of terminal frames in the termination loss (as the teacher's)
    # Action guidance g of the teacher the student learns from (guidance distillation, Meng
    # et al. 2023, arXiv 2210.03142): the student serves the guided teacher at one network
    # evaluation per sampling step instead of two. 1: the teacher as trained.
    teacher_guidance: float = 1.0
    # The bundle component the student starts from; None: a copy of the teacher. Self-Forcing
    # starts from a few-step student already distilled by regression (its paper: an ODE-
    # distilled one), so that its rollouts are frames from the first step on.
    student_init: str | None = None
    # A shallower, faster student: only these blocks of the start model, in this order (their
    # weights, with everything outside the blocks, start it), as DistilBERT starts from every
    # other layer of its teacher. None: every block.
    student_layers: list[int] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if self.sampling_steps not in (1, 2, 4):
            raise ConfigError(f"sampling_steps: expected 1, 2 or 4, got {self.sampling_steps}")
        if self.student_layers is not None and not self.student_layers:
            raise ConfigError(
                "student_layers: expected a list of block indices (of the teacher, or of student_init), got an empty list"
            )
        if not self.teacher_guidance > 0:
            raise ConfigError(f"teacher_guidance: expected a positive number (1: none), got {self.teacher_guidance}")


def last_frame_velocity(
    model: Backbone,
    x: torch.Tensor,
    t: torch.Tensor,
    actions: torch.Tensor,
    guidance: float = 1.0,
    segments: Segments | None = None,
    past_actions: torch.Tensor | None = None,
) -> torch.Tensor:
    """``model``'s velocity (float32, (B, N, C)) of the window's last frame under action
    guidance g: the reference is the same window with the last frame's action zeroed, as
    the dream's guidance zeroes the new frame's action (the context's stay in the cache)."""
    conditioned = model(x, t, actions, segments=segments, past_actions=past_actions).velocity[:, -1].float()
    if guidance == 1.0:
        return conditioned
    neutral_actions = actions.clone()
    neutral_actions[:, -1] = 0.0
    neutral = model(x, t, neutral_actions, segments=segments, past_actions=past_actions).velocity[:, -1].float()
    return guide(neutral, conditioned, guidance)


ConfigT = TypeVar("ConfigT", bound=DistillConfig)  # each method's config


class DistillTask(Generic[ConfigT]):
    method = ""  # set by each method: the student is bundle component "student_<method>"

    def __init__(self, config: ConfigT):
        self.config = config
        bundle = load_bundle(Path(config.bundle))
        self.teacher_config = bundle.config(config.teacher)
        self.teacher = load_backbone(bundle, config.teacher).eval().requires_grad_(False)
        self.student_start = self.teacher if config.student_init is None else self._load_start(bundle, config.student_init)
        self.windows = LatentWindows(
            config.data,
            bundle,
            Path(config.run),
            self.teacher.config,
            config.train.device,
            f"{self.method}: teacher {config.teacher!r}",
        )
        self.scene = self.windows.scene
        self.model = self.make_trainable().train().requires_grad_(True)

    def _load_start(self, bundle, name: str) -> Backbone:
        if name not in bundle.components:
            raise ConfigError(
                f"student_init: expected a component of {self.config.bundle} "
                f"({', '.join(sorted(bundle.components))}), got {name!r}"
            )
        if bundle.class_name(name) != bundle.class_name(self.config.teacher):
            raise ConfigError(
                f"student_init: {name!r} is a {bundle.class_name(name)}, expected a "
                f"{bundle.class_name(self.config.teacher)} like the teacher"
            )
        start = load_backbone(bundle, name)
        # A shallower start (a student distilled with ``student_layers``) is welcome: the
        # student keeps its depth; everything a block reads or writes must match the teacher's.
        if replace(start.config, depth=self.teacher.config.depth) != self.teacher.config:
            raise ConfigError(
                f"student_init: {name!r} must have the teacher's architecture up to its depth; "
                f"its model config {start.config} differs from {self.teacher.config}"
            )
        return start

    def make_trainable(self) -> nn.Module:
        """What the loop trains: the student, a copy of ``student_init`` (default the teacher),
        kept to ``student_layers``."""
        return keep_blocks(self.student_start, self.config.student_layers)

    @property
    def component(self) -> str:
        return f"student_{self.method}"

    def teacher_on(self, device: torch.device) -> Backbone:
        if next(self.teacher.parameters()).device != device:
            self.teacher = self.teacher.to(device)
        return self.teacher

    def teacher_velocity(
        self,
        teacher: Backbone,
        x: torch.Tensor,
        t: torch.Tensor,
        actions: torch.Tensor,
        segments: Segments | None = None,
        past_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The frozen teacher's velocity of the window's last frame, guided by the config's
        ``teacher_guidance``."""
        return last_frame_velocity(teacher, x, t, actions, self.config.teacher_guidance, segments, past_actions)

    @staticmethod
    def window(context: torch.Tensor, x_last: torch.Tensor, t_last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames and noise levels of a window whose ``context`` (B, T, N, C) is clean (t = 0,
        as the cache holds it at inference) and whose last frame is ``x_last`` (B, N, C) at
        noise level ``t_last`` (B,)."""
        B, T = context.shape[:2]
        x = torch.cat([context, x_last[:, None].to(context.dtype)], dim=1)  # (B, T + 1, N, C)
        t = torch.cat([torch.zeros(B, T, device=x.device), t_last[:, None]], dim=1)  # (B, T + 1)
        return x, t

    def with_last(self, data: LatentBatch, x_last: torch.Tensor, t_last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The drawn window with its last frame replaced by ``x_last`` at ``t_last``."""
        return self.window(data.x0[:, :-1], x_last, t_last)

    @staticmethod
    def context_heads(data: LatentBatch) -> LatentBatch:
        """The batch with the last frame's heads masked out: only the clean context frames
        are at t = 0, where the heads run at inference (the cache commit)."""
        has_step = data.has_step.clone()
        has_step[:, -1] = 0
        return replace(data, has_step=has_step)

    def export(self, ema_model: Backbone, metadata: dict) -> None:
        c = self.config
        # The student's own model config: with ``student_layers`` it is shallower than the teacher.
        config = {
            **self.teacher_config,
            "model": asdict(ema_model.config),
            "method": self.method,
            "teacher": c.teacher,
            "sampling_steps": c.sampling_steps,
            "distillation": {key: value for key, value in asdict(c).items() if key not in ("data", "train")},
        }
        update_bundle(
            c.bundle, components={self.component: (ema_model, config)}, metadata={f"{self.component}_training": metadata}
        )


def keep_blocks(model: Backbone, layers: list[int] | None) -> Backbone:
    """A copy of ``model`` with only the blocks ``layers`` (None: all of them)."""
    if layers is None:
        return copy.deepcopy(model)
    depth = model.config.depth
    if not all(0 <= layer < depth for layer in layers):
        raise ConfigError(
            f"student_layers: expected block indices in 0..{depth - 1} (the depth {depth} of the model "
            f"the student starts from: the teacher, or student_init), got {layers}"
        )
    student = Backbone(replace(model.config, depth=len(layers)))
    student.load_state_dict(
        {
            **{k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")},
            **{f"blocks.{new}.{k}": v for new, old in enumerate(layers) for k, v in model.blocks[old].state_dict().items()},
        }
    )
    return student
