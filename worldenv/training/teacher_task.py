"""Training the teacher: the block-causal backbone on windows of tokenizer
latents (``latent_windows.py``), with flow matching where every frame of a window
has its own noise level (diffusion forcing, Chen et al. 2024), plus reward and
termination heads.
"""

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from worldenv import config as configs
from worldenv.checkpoint import Bundle, load_bundle, update_bundle
from worldenv.config import ConfigError
from worldenv.diffusion.flow import add_noise, flow_matching_loss, sample_training_times
from worldenv.dream_step import dream_step, prime_cache
from worldenv.memory import FastPaths
from worldenv.nn.action_flow import widen
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.training.data import DataConfig
from worldenv.training.latent_windows import LatentWindows, head_losses
from worldenv.training.loop import TrainConfig


@dataclass
class TeacherTrainingConfig:
    data: DataConfig
    bundle: str  # holds the trained tokenizer; the teacher is written into it
    run: str
    model: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Share of frames drawn at a context noise level in [0, context_noise] instead of the
    # logit-normal: at inference the context is clean (or lightly noised), so the model
    # must see many windows whose past is (nearly) clean.
    clean_context_share: float = 0.5
    context_noise: float = 0.05
    # Context corruption (GameNGen, DIAMOND): this share of the context frames is noised
    # to a level drawn in [0, context_corruption] (the level is the frame's embedded t),
    # so the next frame cannot be had by continuing the motion already on screen and a
    # dream's own imperfect frames look like a context it has seen. 0: off.
    context_corruption: float = 0.0
    corruption_share: float = 0.5
    # A loss that weights what moves (Delta-IRIS, DWS's motion-reinforced loss): each
    # token's weight is 1 + motion_weight * (its latent change from the frame before,
    # over the batch's mean change), so a thin moving arm is not outweighed by the
    # still background. 0: every token alike.
    motion_weight: float = 0.0
    # Training on the model's own short rollouts (DIAMOND unrolls on its own frames): in
    # this share of the windows the last ``own_rollout_frames`` context frames are replaced,
    # one after another, by the model's own one-evaluation predictions of them, dreamed as
    # at inference (no gradient), and only the window's last frame, the real one, is denoised: the model
    # learns to carry on from frames like the ones it will have drawn. 0: off.
    own_rollout_frames: int = 0
    own_rollout_share: float = 0.5
    # Action dropout (Vid2World, classifier-free guidance): in this share of the windows
    # every action the window is conditioned on (its own and the history before it) is
    # zero, the condition action guidance's v(0) reads, so that guidance (``action_guidance``
    # g > 1: v(0) + g (v(a) - v(0))) extrapolates from what the model learned the action
    # does against what it predicts without one. 0: off.
    action_dropout: float = 0.0
    # Noise levels of the other frames. Uniform, not SD3's logit-normal: a few-step
    # sampler starts at t = 1, where the velocity is the model's whole prediction of
    # the next frame (the dynamics are nearly deterministic); logit-normal almost never
    # trains there (t > 0.95 has probability 0.2 %), and a teacher evaluated after 750
    # steps scored 6 dB below copy-last-frame at horizon 1.
    time_distribution: str = "uniform"
    reward_weight: float = 1.0
    termination_weight: float = 0.2
    termination_pos_weight: float = 1.0  # weight of terminal frames in the termination loss
    # A bundle whose teacher the training starts from (fine-tuning, e.g. on more data)
    # instead of fresh weights; it must have this model config and this bundle's tokenizer.
    init_from: str | None = None

    def validate(self) -> None:
        if not 0.0 <= self.context_corruption < 1.0:
            raise ConfigError(f"context_corruption: expected a level in [0, 1), got {self.context_corruption}")
        if not 0.0 <= self.corruption_share <= 1.0:
            raise ConfigError(f"corruption_share: expected a share in [0, 1], got {self.corruption_share}")
        if not 0.0 <= self.action_dropout < 1.0:
            raise ConfigError(f"action_dropout: expected a share in [0, 1), got {self.action_dropout}")
        if self.own_rollout_frames < 0:
            raise ConfigError(f"own_rollout_frames: expected a count >= 0, got {self.own_rollout_frames}")
        if self.own_rollout_frames and self.model.memory_frames:
            # The rollout dreams from a cache primed with the window's consecutive real frames;
            # a memory sequence's sinks and memory frames are not consecutive.
            raise ConfigError("own_rollout_frames: not supported with long-term memory (model.memory_frames > 0)")
        if not 0.0 <= self.own_rollout_share <= 1.0:
            raise ConfigError(f"own_rollout_share: expected a share in [0, 1], got {self.own_rollout_share}")
        if self.motion_weight < 0.0:
            raise ConfigError(f"motion_weight: expected a weight >= 0, got {self.motion_weight}")
        if self.time_distribution not in ("uniform", "logit_normal"):
            raise ConfigError(f"time_distribution: expected 'uniform' or 'logit_normal', got {self.time_distribution!r}")


def motion_weights(x0: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-token loss weights (B, L, N) for clean latents ``x0`` (B, L, N, C): 1 plus
    ``strength`` times each token's squared change from the frame before, over the batch's
    mean change (the first frame, which has none before it, gets the mean)."""
    if strength == 0:
        return torch.ones(x0.shape[:3], device=x0.device)
    change = (x0[:, 1:] - x0[:, :-1]).float().square().mean(-1)  # (B, L - 1, N)
    change = torch.cat([change.mean(1, keepdim=True), change], dim=1)
    return 1.0 + strength * change / change.mean().clamp_min(1e-8)


class TeacherTask:
    def __init__(self, config: TeacherTrainingConfig):
        self.config = config
        bundle = load_bundle(Path(config.bundle))
        self.windows = LatentWindows(config.data, bundle, Path(config.run), config.model, config.train.device, "teacher.model")
        self.scene = self.windows.scene
        self.model = Backbone(config.model)
        if config.init_from is not None:
            self._start_from(load_bundle(Path(config.init_from)), bundle)

    def _start_from(self, start: Bundle, bundle: Bundle) -> None:
        """Load ``init_from``'s teacher, refusing one that denoises another tokenizer's
        latents or has another architecture (its weights would load but mean nothing)."""
        where = f"init_from: {start.path}"
        if "teacher" not in start.components:
            raise ConfigError(f"{where}: expected a bundle with a teacher, it has {start.components}")
        if start.records.get("tokenizer", {}).get("sha256") != bundle.records["tokenizer"]["sha256"]:
            raise ConfigError(
                f"{where}: its tokenizer differs from {bundle.path}'s, so its teacher's "
                "latents are not this run's; expected a bundle made from the same tokenizer"
            )
        model = configs.build(BackboneConfig, start.config("teacher")["model"], f"{where}: teacher")
        wider = (
            self.config.model.action_flow and model.action_flow and model.action_flow_reach < self.config.model.action_flow_reach
        )
        if wider and replace(model, action_flow_reach=self.config.model.action_flow_reach) == self.config.model:
            # The one architecture change a start bundle may differ by: ActionFlow's map
            # grown to a wider neighbourhood, computing at first what the start did.
            weights = start.state_dict("teacher")
            key = "action_flow.displacement.weight"
            weights[key] = widen(
                weights[key], model.latent_channels, model.action_flow_reach, self.config.model.action_flow_reach
            )
            self.model.load_state_dict(weights)
        elif model != self.config.model:
            raise ConfigError(
                f"{where}: its teacher's model config {model} differs from teacher.model {self.config.model} "
                "(only a wider model.action_flow_reach may differ)"
            )
        else:
            start.load_into("teacher", self.model)
        self.init_sha256 = start.records["teacher"]["sha256"]

    def loss(self, model, batch: int, generator: torch.Generator):
        c = self.config
        device = next(model.parameters()).device
        data, index = self.windows.draw(batch, generator, device)
        # Every random draw on the CPU generator, in a fixed order: the same batch on any device.
        logit_normal = (0.0, 1.0) if c.time_distribution == "logit_normal" else None
        t = sample_training_times(tuple(index.shape), generator, logit_normal=logit_normal)
        clean = torch.rand(index.shape, generator=generator) < c.clean_context_share
        clean[:, : data.context] = True  # sinks and memory are context only, as in the cache
        context_level = c.context_noise * torch.rand(index.shape, generator=generator)
        if c.context_corruption > 0:  # drawn only then: runs without it keep their batches
            corrupted = torch.rand(index.shape, generator=generator) < c.corruption_share
            corrupted[:, : data.context] = False  # sinks and memory stay as the cache keeps them
            context_level = torch.where(
                corrupted, c.context_corruption * torch.rand(index.shape, generator=generator), context_level
            )
        if c.own_rollout_frames:
            rolled = torch.rand(index.shape[0], generator=generator) < c.own_rollout_share
            clean[rolled] = True
            clean[rolled, -1] = False  # the real last frame is the one denoised
            data.x0 = self._roll_out(model, data, rolled.to(device), generator)
        if c.action_dropout > 0:  # drawn only then: runs without it keep their batches
            dropped = (torch.rand(index.shape[0], generator=generator) < c.action_dropout).to(device)
            data = without_actions(data, dropped)
        t = torch.where(clean, context_level, t).to(device)
        noise = torch.randn(data.x0.shape, generator=generator).to(device)
        out = model(add_noise(data.x0, noise, t), t, data.actions, segments=data.segments, past_actions=data.past_actions)
        # Context frames carry no denoising loss: at t <= context_noise the velocity's noise
        # part is all but invisible in x_t, so its loss is irreducible and only adds
        # gradient noise; they are there to be attended to.
        denoised = (~clean).float().to(device)  # (B, L)
        weight = denoised[..., None] * motion_weights(data.x0, c.motion_weight)  # (B, L, N)
        # Losses in float32 also under bf16 autocast.
        diffusion = flow_matching_loss(out.velocity.float(), data.x0, noise, weight=weight) / weight.mean().clamp_min(1e-6)
        reward, termination = head_losses(out, data, c.termination_pos_weight)
        loss = diffusion + c.reward_weight * reward + c.termination_weight * termination
        return loss, {"diffusion": diffusion.detach(), "reward_mse": reward.detach(), "termination_bce": termination.detach()}

    @torch.no_grad()
    def _roll_out(self, model, data, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``data.x0`` with, in ``rows``, each of the last ``own_rollout_frames`` frames
        before the window's last replaced by the model's prediction of it from pure noise
        in one evaluation, dreamed as a served dream dreams (``dream_step``): the real
        frames before them committed to a cache, then each prediction (the real frame in
        the other rows) before the next."""
        x0 = data.x0.clone()
        B, L = x0.shape[:2]
        first = max(data.context + 1, L - 1 - self.config.own_rollout_frames)
        backbone = model.module if isinstance(model, DistributedDataParallel) else model
        device, dtype = x0.device, x0.dtype
        cache = backbone.new_cache(B, device, dtype)
        state = backbone.new_state(B, device, dtype, data.past_actions)
        fast = FastPaths.for_device(device)
        prime_cache(backbone, x0[:, :first], data.actions[:, :first], cache, state, fast)
        for frame in range(first, L - 1):
            noise = torch.randn(x0[:, frame].shape, generator=generator).to(device)
            real = x0[:, frame]

            def keep(predicted: torch.Tensor, real: torch.Tensor = real) -> torch.Tensor:
                return torch.where(rows[:, None, None], predicted.to(dtype), real)

            step = dream_step(backbone, cache, state, data.actions[:, frame], noise, "euler", 1, fast=fast, keep=keep)
            x0[:, frame] = step.committed
        return x0

    def export(self, ema_model: Backbone, metadata: dict) -> None:
        c = self.config
        update_bundle(
            c.bundle,
            components={"teacher": (ema_model, {"model": asdict(c.model), "context_noise": c.context_noise})},
            metadata={
                "scene": self.scene,
                "teacher_training": {
                    **metadata,
                    **(
                        {"init_from": {"path": c.init_from, "teacher_sha256": self.init_sha256}}
                        if c.init_from is not None
                        else {}
                    ),
                },
            },
        )


def without_actions(data, rows: torch.Tensor):
    """``data`` with every action of ``rows`` (B,) bool, its own and the history before the
    window, set to zero: action dropout's windows."""
    keep = (~rows).to(data.actions.dtype)
    past = None if data.past_actions is None else data.past_actions * keep.view(-1, *([1] * (data.past_actions.dim() - 1)))
    return replace(data, actions=data.actions * keep[:, None, None], past_actions=past)
