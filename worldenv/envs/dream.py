"""What every dream env loads: the checkpoint's world model, its start contexts,
and the spaces of the scene it imitates; plus the checks on what callers pass in.

The single env, the vector env, the SB3 adapter and the PettingZoo env are thin
layers over :class:`Dream`, so they agree on spaces, seeding and errors.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from worldenv.checkpoint import CheckpointError, load_bundle, shipped_checkpoint
from worldenv.contexts import COMPONENT as CONTEXTS
from worldenv.contexts import DEFAULT_SEED as CONTEXT_SEED
from worldenv.contexts import StartContexts, load_start_contexts, record_start_contexts
from worldenv.diffusion.samplers import SAMPLERS
from worldenv.scenes import SCENES, make_scene, scene_info
from worldenv.serving import serving_choice
from worldenv.validation import as_array, check_action
from worldenv.world_model import WorldModel, load_backbone, load_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_SCENE = "reacher"
def check_device(device) -> torch.device:
    """``device`` as a torch device this torch can run on, refused before anything loads: torch's
    own refusal comes from deep inside the first ``.to()`` (for CUDA on a CPU-only build, an
    AssertionError) and names no device that would do."""
    available = ["cpu"]
    if torch.cuda.is_available():
        available += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        available.append("mps")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):  # a type torch does not know ("tpu"), or not a device at all
        resolved = None
    if resolved is None or (resolved.type != "cpu" and str(resolved) not in available):
        raise ValueError(f"expected device to be one of {available} (what torch {torch.__version__} can use here), "
                         f"got {device!r}")
    return resolved


def check_options(options, known: tuple[str, ...], where: str) -> dict:
    """``reset``'s options as a dict of ``known`` keys: a misspelt key (``context_frame``) would
    otherwise be ignored, and the dream would start from its bank, not from the caller's frames."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{where}: expected options to be None or a dict with keys from {list(known)}, "
                        f"got {type(options).__name__}")
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ValueError(f"{where}: unknown options {unknown}; expected keys from {list(known)}")
    return dict(options)


def check_seed(seed, where: str) -> int | None:
    """``reset``'s seed: None or a non-negative integer (numpy's too). Gymnasium's own refusal is a
    ``gymnasium.error.Error``, which no ``except ValueError`` catches, and it refuses numpy integers."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{where}: expected seed to be None or a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{where}: expected seed to be None or a non-negative integer, got {seed!r}")
    return int(seed)


class SceneMismatchError(CheckpointError, ValueError):
    """``scene=`` names another scene than the checkpoint models: a CheckpointError, as it always
    was, and a ValueError, as every other pair of keyword arguments that cannot both hold."""


def require_open(dream: "Dream | None", where: str) -> "Dream":
    """The dream of an env that ``close()`` has not freed; a closed env says so."""
    if dream is None:
        raise RuntimeError(f"{where}: the env is closed; make a new env")
    return dream


@dataclass
class Dream:
    """A loaded world model serving ``batch`` dreams of one scene."""

    scene: str
    checkpoint: Path
    component: str  # the bundle component that dreams (teacher or a student)
    model: WorldModel
    contexts: StartContexts
    observation_space: spaces.Box  # the ground-truth scene's, exactly
    action_space: spaces.Box
    render_fps: int
    agents: tuple[str, ...]

    @classmethod
    def load(
        cls,
        batch: int,
        scene: str | None = None,
        checkpoint: str | Path | None = None,
        model: str | None = None,
        sampler: str = "euler",
        sampling_steps: int | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
        action_guidance: float | None = None,
        commit: str | None = None,
        start_contexts: int | None = None,
        start_within: int = 0,
        start_policy: str = "mix",
    ) -> "Dream":
        """``model``, ``sampling_steps``, ``action_guidance``, ``commit``: the bundle's serving
        choice where None (``worldenv/serving.py``). ``dtype``: the networks' (None: ``auto``,
        float32 on the CPU, bfloat16 on accelerators, ``world_model.resolve_dtype``).

        ``start_contexts``: None, the bundle's bank of real starts; N, a bank of N recorded
        here from the MuJoCo scene, as ``worldenv contexts --count N`` records it (its first
        starts are the shipped bank's; tens of milliseconds each). A policy trained in the
        dream sees only the layouts its starts hold: the duo's 32 are too few to learn from
        (agents/README.md, "Duo"), and a bank of hundreds is too large to ship. ``start_within``:
        with ``start_contexts``, each recorded start begins at a step drawn from the first
        ``start_within`` of its episode (``contexts.py``): mid-episode starts, for short
        imagined episodes (``max_episode_steps``) that still cover where an episode goes;
        ``start_policy``: the exploration policy whose episodes they are."""
        device = check_device(device)
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"expected a positive integer number of envs, got {batch!r}")
        if start_contexts is not None and (isinstance(start_contexts, bool) or not isinstance(start_contexts, (int, np.integer))
                                           or start_contexts < 1):
            raise ValueError(f"expected start_contexts to be None (the bundle's bank) or a positive integer, got {start_contexts!r}")
        if isinstance(start_within, bool) or not isinstance(start_within, (int, np.integer)) or start_within < 0:
            raise ValueError(f"expected start_within to be a number of steps >= 0, got {start_within!r}")
        if (start_within or start_policy != "mix") and start_contexts is None:
            raise ValueError(f"expected start_contexts=N with start_within={start_within!r} and start_policy={start_policy!r}: "
                             "they shape a bank of starts recorded when the env is made (the bundle's own bank is fixed)")
        if not isinstance(sampler, str) or sampler not in SAMPLERS:
            raise ValueError(f"expected sampler to be one of {sorted(SAMPLERS)}, got {sampler!r}")
        if scene is not None and not isinstance(scene, str):  # a list would fail as unhashable, naming nothing
            raise TypeError(f"expected scene to be None or one of {sorted(SCENES)}, got {scene!r}")
        if scene is not None:
            scene_info(scene)  # an unknown name fails here, listing the known ones
        path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(scene or DEFAULT_SCENE)
        bundle = load_bundle(path)
        trained_on = bundle.scene
        if scene is not None and trained_on != scene:
            raise SceneMismatchError(f"{path}: a checkpoint of scene {trained_on!r}, but scene={scene!r} was asked for; "
                                     f"expected scene=None or {trained_on!r}")
        scene = trained_on
        dreamers = [name for name in bundle.components if bundle.class_name(name) == "Backbone"]
        if model is not None and (not isinstance(model, str) or model not in dreamers):
            # Else the bundle's own error (no component, or a tokenizer's config read as a backbone's).
            raise ValueError(f"{path}: expected model to be None (the bundle's choice) or one of {dreamers}, "
                             f"the networks that dream, got {model!r}")
        ground_truth = make_scene(scene).unwrapped  # spaces and metadata only: nothing is rendered
        observation_space, action_space = ground_truth.observation_space, ground_truth.action_space
        render_fps, agents = ground_truth.metadata["render_fps"], ground_truth.agents
        ground_truth.close()

        serving = serving_choice(bundle.metadata, model, sampling_steps, action_guidance, commit)
        tokenizer, backbone = load_tokenizer(bundle), load_backbone(bundle, serving.model)
        size, action_dim = tokenizer.config.image_size, backbone.config.action_dim
        if (size, size, 3) != observation_space.shape or (action_dim,) != action_space.shape:
            raise CheckpointError(
                f"{path}: the model sees {size}x{size} frames and {action_dim}-dim actions; scene {scene!r} has "
                f"observations {observation_space.shape} and actions {action_space.shape}"
            )
        if backbone.config.rewards != max(1, len(agents)):
            raise CheckpointError(f"{path}: {backbone.config.rewards} reward heads for the {len(agents) or 1} agent(s) of {scene!r}")
        world = WorldModel(tokenizer, backbone, batch, sampler=sampler, device=device, dtype=dtype,
                           **serving.world_model_kwargs())
        contexts = load_start_contexts(bundle)
        if start_contexts is not None:
            seed = bundle.config(CONTEXTS).get("seed", CONTEXT_SEED)
            logger.info("recording %d start contexts of %d frames in the MuJoCo scene %r (within %d steps of their "
                        "episodes' starts, under %r)", start_contexts, contexts.length, scene, start_within, start_policy)
            contexts, _ = record_start_contexts(scene, int(start_contexts), contexts.length, size, seed, start_within, start_policy)
        if contexts.frames.shape[2:] != (size, size, 3) or contexts.actions.shape[-1] != action_dim:
            raise CheckpointError(f"{path}: start contexts do not fit the model ({tuple(contexts.frames.shape)})")
        return cls(scene, path, serving.model, world, contexts, observation_space, action_space, render_fps, agents)

    def draw_start(self, rng: np.random.Generator) -> tuple[int, int]:
        """A start context and a noise seed, both from the env's generator: a seeded
        reset reproduces the whole rollout."""
        return int(rng.integers(self.contexts.count)), int(rng.integers(2**63 - 1))

    def check_actions(self, actions, lead: tuple[int, ...], where: str) -> np.ndarray:
        """``(*lead, A)`` float32, clipped to the action space (see ``validation.check_action``)."""
        shape = (*lead, *self.action_space.shape)
        low, high = np.broadcast_to(self.action_space.low, shape), np.broadcast_to(self.action_space.high, shape)
        return check_action(actions, low, high, where)

    def check_context(self, frames, actions, batch: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Caller-given context: frames ([batch,] T, H, W, 3) uint8, actions ([batch,] T, A) finite,
        clipped to the action space as ``step`` clips its actions."""
        lead = () if batch is None else (batch,)
        image = self.observation_space.shape
        frames = as_array(frames, f"context_frames of shape {(*lead, 'T', *image)} and dtype uint8", where)
        actions = as_array(actions, f"context_actions of shape {(*lead, 'T', *self.action_space.shape)}", where)
        if frames.dtype != np.uint8 or frames.ndim != len(lead) + 4 or frames.shape[: len(lead)] != lead or frames.shape[-3:] != image or frames.shape[len(lead)] < 1:
            raise ValueError(f"{where}: expected context_frames of shape {(*lead, 'T', *image)} and dtype uint8 (T >= 1), "
                             f"got shape {frames.shape} and dtype {frames.dtype}")
        expected = (*frames.shape[: len(lead) + 1], *self.action_space.shape)
        if actions.shape != expected or actions.dtype.kind not in "fiu" or not np.all(np.isfinite(actions)):
            raise ValueError(f"{where}: expected finite context_actions of shape {expected} (one per context frame, the "
                             f"action that led to it), got shape {actions.shape} and dtype {actions.dtype}")
        return frames, self.check_actions(actions, expected[:-1], where)

    def step_info(self, rewards: np.ndarray) -> dict[str, np.ndarray]:
        """Per-agent rewards under the ground truth's info keys (``reward_<agent>``)."""
        return {f"reward_{agent}": rewards[..., i] for i, agent in enumerate(self.agents)}
