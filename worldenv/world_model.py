"""``WorldModel``: tokenizer + backbone + sampler + KV cache, serving a batch of
dreams on one device.

``reset(context_frames, context_actions, seeds, mask)`` primes (some of) the
dreams from real frames; ``step(actions)`` samples every dream's next frame
in ``sampling_steps`` network evaluations, decodes it, and commits it to the
cache in one more (``dream_step``): the sampled latent, or the latent of the
decoded frame (``commit``, ``worldenv/serving.py``). One batched forward per evaluation, noise
from per-env counters (``worldenv.diffusion.noise``), no host sync. On CPU a
dream's numbers do not depend on the batch it shares (``nn/batch_invariant.py``),
so one dream alone and the same dream among many are bit-identical.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal, overload

import torch

from worldenv.checkpoint import Bundle, load_bundle
from worldenv.diffusion.noise import counter_noise
from worldenv.dream_step import dream_step, prime_cache
from worldenv.memory import FastPaths
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.nn.batch_invariant import in_fixed_chunks
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig, to_uint8
from worldenv.serving import check_commit

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
logger = logging.getLogger(__name__)


def resolve_dtype(dtype: "str | torch.dtype | None", device: "str | torch.device") -> torch.dtype:
    """The networks' dtype for a dream: a torch dtype, one of ``DTYPES`` by name, or
    ``auto``/None: bfloat16 on an accelerator, float32 on the CPU, where a dream is the
    same bit for bit alone or in any batch (``nn/batch_invariant.py``). On a CPU with
    AMX tiles bfloat16 dreams about twice as fast (BENCHMARKS.md, "Precision"), seeded
    as ever, but a dream's last bits then depend on its batch."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype is None or dtype == "auto":
        return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"expected dtype to be 'auto', one of {sorted(DTYPES)} or the torch dtype, got {dtype!r}")


def load_tokenizer(bundle: Bundle) -> Tokenizer:
    """The bundle's tokenizer, built from its recorded config, frozen."""
    tokenizer = Tokenizer(bundle.model_config("tokenizer", TokenizerConfig))
    bundle.load_into("tokenizer", tokenizer)
    return tokenizer.eval().requires_grad_(False)


def load_backbone(bundle: Bundle, name: str = "teacher") -> Backbone:
    backbone = Backbone(bundle.model_config(name, BackboneConfig))
    bundle.load_into(name, backbone)
    return backbone


def on_images(tokenizer: Tokenizer, fn, x: torch.Tensor) -> torch.Tensor:
    """The tokenizer's ``fn`` on a batch of images or latents: in float32 on the CPU in
    fixed chunks (batch-invariant, ``nn/batch_invariant.py``), elsewhere in one call."""
    if x.device.type == "cpu" and tokenizer.latent_mean.dtype == torch.float32:
        return in_fixed_chunks(fn, x)
    return fn(x)


def latents_to_frames(tokenizer: Tokenizer, latents: torch.Tensor) -> torch.Tensor:
    """Latents (B, N, C) -> the uint8 frames (B, H, W, 3) a dream shows."""
    grid = tokenizer.config.grid
    return to_uint8(on_images(tokenizer, tokenizer.decode, latents.reshape(len(latents), grid, grid, -1)).float())


def frames_to_latents(tokenizer: Tokenizer, frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> latents (B, N, C) as context frames are encoded; after
    ``latents_to_frames``, what a ``frame`` commit leaves in the cache."""
    latents = on_images(tokenizer, tokenizer.encode, frames)
    return latents.reshape(len(frames), -1, latents.shape[-1]).to(dtype)


class CompiledOrEager:
    """``fn`` compiled by ``torch.compile`` (Inductor; on CUDA ``reduce-overhead``, CUDA graphs),
    or ``fn`` itself where that fails: a failure to compile (no C compiler, an operator
    Inductor lacks) is logged once and the dream goes on eagerly. Compilation happens at the
    first call of each shape."""

    def __init__(self, fn: Callable, name: str, device: torch.device):
        self.eager, self.name, self.failed = fn, name, False
        self.compiled = torch.compile(fn, mode="reduce-overhead" if device.type == "cuda" else None)

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as error:  # Dynamo, Inductor and the C compiler raise many kinds; none may end a dream
                self.failed = True
                logger.warning("torch.compile of %s failed (%s: %s); serving it eagerly", self.name, type(error).__name__, error)
        return self.eager(*args)


def compile_networks(tokenizer: Tokenizer, backbone: Backbone, device: torch.device) -> None:
    """Compile the parts of a dream step whose shapes do not depend on the cache: the
    tokenizer's decoder and encoder and each block's MLP. The attention reads a cache whose
    fill and validity branch in Python (``attention.layout``): compiled whole, the backbone
    broke into per-layer graphs, recompiled past Dynamo's limit (8) and ran slower than
    eager (docs/results.md, "Compiled serving"). Instance attributes shadow the methods, so the
    modules, their weights and state dicts stay the bundle's."""
    tokenizer.decode = CompiledOrEager(tokenizer.decode, "the tokenizer's decoder", device)  # type: ignore[method-assign]
    tokenizer.encode = CompiledOrEager(tokenizer.encode, "the tokenizer's encoder", device)  # type: ignore[method-assign]
    for index, block in enumerate(backbone.blocks):
        mlp = block.get_submodule("mlp")
        mlp.forward = CompiledOrEager(mlp.forward, f"block {index}'s MLP", device)


class WorldModel:
    def __init__(
        self,
        tokenizer: Tokenizer,
        backbone: Backbone,
        batch: int,
        sampler: str = "euler",
        sampling_steps: int = 4,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = torch.float32,
        cache_slots: dict[str, int] | None = None,
        action_guidance: float = 1.0,
        commit: str = "latent",
        compile: bool = False,
    ):
        """``cache_slots`` overrides the backbone's sink_frames / memory_frames /
        window_frames for these dreams (the memory ablations).

        ``action_guidance`` g scales what the action changes: each velocity is
        ``v(0) + g * (v(a) - v(0))``, with ``v(0)`` the model's answer under the zero
        action (no force, torque or turn in every scene), at one more network evaluation
        per sampling step. A model that answers actions too weakly (a cartpole pushed half
        as far as MuJoCo pushes it, ``benchmarks/action_response.py``) teaches a policy a
        gain that diverges in MuJoCo; g near the inverse of the measured gain corrects it.
        g = 1 is the model as trained.

        ``commit``: what each new frame leaves in the cache, ``latent`` (the sample) or
        ``frame`` (the decoded uint8 frame encoded again: what the dream shows, in the form
        the context frames had in training; one encoder pass more per frame).

        ``dtype``: the networks' (``resolve_dtype``: a dtype, its name, or ``auto``). The
        sampler integrates in float32 either way.

        ``compile``: the cache-free networks under ``torch.compile`` (``compile_networks``),
        falling back to eager where compiling fails; the dream agrees with the eager one to
        float rounding, not bit for bit."""
        self.device, self.batch = torch.device(device), batch
        self.dtype = dtype = resolve_dtype(dtype, self.device)
        self.tokenizer = tokenizer.to(self.device, dtype).eval().requires_grad_(False)
        if dtype != torch.float32:
            # Reduced-precision convolutions (oneDNN on AMX, cuDNN) want channels-last
            # weights: 10x the NCHW speed in bfloat16 on the CPU.
            # (Module.to takes memory_format at run time; torch's overloads leave it out.)
            self.tokenizer.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.backbone = backbone.to(self.device, dtype).eval().requires_grad_(False)
        if compile:
            compile_networks(self.tokenizer, self.backbone, self.device)
        self.sampler, self.sampling_steps = sampler, sampling_steps
        self.action_guidance = action_guidance
        self.commit = check_commit(commit)
        self.cache_slots = dict(cache_slots or {})
        self.cache = backbone.new_cache(batch, self.device, dtype, **self.cache_slots)
        self.state = backbone.new_state(batch, self.device, dtype)
        self.fast = FastPaths.for_device(self.device)  # every pass runs under inference_mode
        self.seeds = torch.zeros(batch, dtype=torch.long, device=self.device)
        # The last step's frames, or its sample while nobody has looked (``step(decode=False)``):
        # ``shown_frames`` decodes them only when asked.
        self._shown: torch.Tensor | None = None
        self._sampled: torch.Tensor | None = None
        config = backbone.config
        self.latent_shape = (config.tokens_per_frame, config.latent_channels)

    @classmethod
    def from_bundle(cls, path: str | Path, batch: int, model: str = "teacher", **kwargs) -> "WorldModel":
        bundle = load_bundle(Path(path))
        return cls(load_tokenizer(bundle), load_backbone(bundle, model), batch, **kwargs)

    @torch.inference_mode()
    def reset(self, context_frames, context_actions, seeds, mask: torch.Tensor | None = None, past_actions=None) -> None:
        """Prime dreams from real frames.

        context_frames: (M, T, H, W, 3) uint8; context_actions: (M, T, A), each the
        action that led to its frame; seeds: (M,) int64 noise seeds; mask: (B,) bool
        choosing the M dreams to prime (all B when None). A context longer than the
        cache keeps its first (sink) frames and the most recent ones.
        past_actions: (M, P, A), oldest first, the actions before the first context
        frame, for a context cut from the middle of an episode: a backbone conditioned
        on k actions sees the last k - 1 of them (zeros when None or fewer, as at an
        episode's start, which is where it would otherwise think the context begins).
        """
        rows = torch.arange(self.batch, device=self.device) if mask is None else mask.nonzero().squeeze(1)
        frames = torch.as_tensor(context_frames, device=self.device)
        actions = torch.as_tensor(context_actions, device=self.device, dtype=self.dtype)
        M, T = frames.shape[:2]
        latents = frames_to_latents(self.tokenizer, frames.flatten(0, 1), self.dtype).reshape(M, T, *self.latent_shape)
        cache = self.backbone.new_cache(M, self.device, self.dtype, **self.cache_slots)
        state = self.backbone.new_state(
            M, self.device, self.dtype, None if past_actions is None else torch.as_tensor(past_actions, device=self.device)
        )
        prime_cache(self.backbone, latents, actions, cache, state, self.fast)
        self.cache.replace_rows(rows, cache)
        self.state.replace_rows(rows, state)
        self.seeds[rows] = torch.as_tensor(seeds, device=self.device, dtype=torch.long)

    # With decode=True (the default) the frames are there: the overloads tell the checker so.
    @overload
    def step(self, actions, decode: Literal[True] = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    @overload
    def step(self, actions, decode: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]: ...

    def step(self, actions, decode: bool = True) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Advance every dream by one frame under ``actions`` (B, A).
        Returns frames (B, H, W, 3) uint8, rewards (B, K) (K: one per agent) and terminated (B,) bool.
        ``decode=False`` skips the tokenizer's decoder (frames None): a planner that only
        scores imagined rewards does not need pixels (a ``frame`` commit decodes anyway)."""
        frames, rewards, termination_logit = self.advance(actions, decode)
        return frames, rewards, termination_logit > 0

    @overload
    def advance(self, actions, decode: Literal[True] = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    @overload
    def advance(self, actions, decode: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]: ...

    @torch.inference_mode()
    def advance(self, actions, decode: bool = True) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """``step``, with the termination head's logit (B,) float32 in place of its decision:
        a planner weighs each imagined reward by the probability that the episode is still
        running (``sigmoid(-logit)``), which ranks plans long before any of them ends."""
        actions = torch.as_tensor(actions, device=self.device, dtype=self.dtype)  # (B, A)
        noise = counter_noise(self.seeds, self.cache.frames_seen, self.latent_shape)
        frames = None

        def keep(latent: torch.Tensor) -> torch.Tensor:  # a ``frame`` commit: the shown frame, encoded again
            nonlocal frames
            frames = latents_to_frames(self.tokenizer, latent)
            return frames_to_latents(self.tokenizer, frames, self.dtype)

        step = dream_step(
            self.backbone,
            self.cache,
            self.state,
            actions,
            noise,
            self.sampler,
            self.sampling_steps,
            guidance=self.action_guidance,
            keep=keep if self.commit == "frame" else None,
            fast=self.fast,
        )
        if decode and frames is None:
            frames = latents_to_frames(self.tokenizer, step.latent)
        self._shown, self._sampled = frames, step.latent
        return frames if decode else None, step.reward, step.termination_logit

    @torch.inference_mode()
    def shown_frames(self) -> torch.Tensor:
        """The frames (B, H, W, 3) uint8 the last ``step`` dreamed, decoded now if it did not
        decode them (``decode=False``): an agent that observes latents pays for pixels only
        when someone looks. Rows primed since show their context, which the caller holds."""
        if self._sampled is None:
            raise RuntimeError("WorldModel.shown_frames: no step has dreamed a frame yet")
        if self._shown is None:
            self._shown = latents_to_frames(self.tokenizer, self._sampled)
        return self._shown
