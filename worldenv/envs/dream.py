"""What every dream env loads: the checkpoint's world model, its start contexts,
and the spaces of the scene it imitates; plus the checks on what callers pass in.

The single env, the vector env, the SB3 adapter and the PettingZoo env are thin
layers over :class:`Dream`, so they agree on spaces, seeding and errors.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gymnasium import spaces

from worldenv.checkpoint import CheckpointError, load_bundle, shipped_checkpoint
from worldenv.contexts import StartContexts, load_start_contexts, record_bundle_starts
from worldenv.dream_config import DreamConfig
from worldenv.envs.observation import Observer
from worldenv.scenes import SCENES, make_scene, scene_info, unwrapped_scene
from worldenv.serving import Serving
from worldenv.validation import as_array, check_action
from worldenv.world_model import WorldModel, load_backbone, load_tokenizer

DEFAULT_SCENE = "reacher"


def check_options(options, known: tuple[str, ...], where: str) -> dict:
    """``reset``'s options as a dict of ``known`` keys: a misspelt key (``context_frame``) would
    otherwise be ignored, and the dream would start from its bank, not from the caller's frames."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{where}: expected options to be None or a dict with keys from {list(known)}, got {type(options).__name__}"
        )
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
    serving: Serving  # the bundle component that dreams (teacher or a student), and how
    model: WorldModel
    contexts: StartContexts
    observation_space: spaces.Box  # the ground-truth scene's, exactly, unless observe says otherwise
    action_space: spaces.Box
    render_fps: int
    agents: tuple[str, ...]
    observe: Observer  # what an agent observes (DreamConfig.observation)

    @classmethod
    def load(cls, batch: int, config: DreamConfig, scene: str | None = None, checkpoint: str | Path | None = None) -> "Dream":
        """``batch`` dreams of ``checkpoint`` (None: the shipped bundle of ``scene``, by default
        the reacher's) served as ``config`` says. With ``config.start_contexts`` set, loading
        records a bank of starts in the MuJoCo scene (``contexts.record_bundle_starts``)."""
        if not isinstance(config, DreamConfig):
            raise TypeError(f"expected config to be a DreamConfig, got {type(config).__name__}")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"expected a positive integer number of envs, got {batch!r}")
        if scene is not None and not isinstance(scene, str):  # a list would fail as unhashable, naming nothing
            raise TypeError(f"expected scene to be None or one of {sorted(SCENES)}, got {scene!r}")
        if scene is not None:
            scene_info(scene)  # an unknown name fails here, listing the known ones
        path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(scene or DEFAULT_SCENE)
        bundle = load_bundle(path)
        trained_on = bundle.scene
        if scene is not None and trained_on != scene:
            raise SceneMismatchError(
                f"{path}: a checkpoint of scene {trained_on!r}, but scene={scene!r} was asked for; "
                f"expected scene=None or {trained_on!r}"
            )
        scene = trained_on
        dreamers = [name for name in bundle.components if bundle.class_name(name) == "Backbone"]
        if config.model is not None and config.model not in dreamers:
            # Else the bundle's own error (no component, or a tokenizer's config read as a backbone's).
            raise ValueError(
                f"{path}: expected model to be None (the bundle's choice) or one of {dreamers}, "
                f"the networks that dream, got {config.model!r}"
            )
        ground_truth = unwrapped_scene(make_scene(scene))  # spaces and metadata only: nothing is rendered
        observation_space, action_space = ground_truth.observation_space, ground_truth.action_space
        render_fps, agents = ground_truth.metadata["render_fps"], ground_truth.agents
        ground_truth.close()

        serving = config.serving(bundle.metadata)
        tokenizer, backbone = load_tokenizer(bundle), load_backbone(bundle, serving.model)
        size, action_dim = tokenizer.config.image_size, backbone.config.action_dim
        if (size, size, 3) != observation_space.shape or (action_dim,) != action_space.shape:
            raise CheckpointError(
                f"{path}: the model sees {size}x{size} frames and {action_dim}-dim actions; scene {scene!r} has "
                f"observations {observation_space.shape} and actions {action_space.shape}"
            )
        if backbone.config.rewards != max(1, len(agents)):
            raise CheckpointError(
                f"{path}: {backbone.config.rewards} reward heads for the {len(agents) or 1} agent(s) of {scene!r}"
            )
        world = WorldModel(tokenizer, backbone, batch, **config.world_model_kwargs(serving))
        if config.start_contexts is None:
            contexts = load_start_contexts(bundle)
        else:  # MuJoCo data collection, as DreamConfig.start_contexts says
            contexts = record_bundle_starts(bundle, config.start_contexts, config.start_within, config.start_policy)
        if contexts.frames.shape[2:] != (size, size, 3) or contexts.actions.shape[-1] != action_dim:
            raise CheckpointError(f"{path}: start contexts do not fit the model ({tuple(contexts.frames.shape)})")
        observe = Observer(config.observation, observation_space, world, bundle)
        return cls(scene, path, serving, world, contexts, observe.space, action_space, render_fps, agents, observe)

    @property
    def component(self) -> str:
        """The bundle component that dreams."""
        return self.serving.model

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
        size = self.model.tokenizer.config.image_size
        image = (size, size, 3)  # the frames the scene shows, whatever the agent observes
        frames = as_array(frames, f"context_frames of shape {(*lead, 'T', *image)} and dtype uint8", where)
        actions = as_array(actions, f"context_actions of shape {(*lead, 'T', *self.action_space.shape)}", where)
        if (
            frames.dtype != np.uint8
            or frames.ndim != len(lead) + 4
            or frames.shape[: len(lead)] != lead
            or frames.shape[-3:] != image
            or frames.shape[len(lead)] < 1
        ):
            raise ValueError(
                f"{where}: expected context_frames of shape {(*lead, 'T', *image)} and dtype uint8 (T >= 1), "
                f"got shape {frames.shape} and dtype {frames.dtype}"
            )
        expected = (*frames.shape[: len(lead) + 1], *self.action_space.shape)
        if actions.shape != expected or actions.dtype.kind not in "fiu" or not np.all(np.isfinite(actions)):
            raise ValueError(
                f"{where}: expected finite context_actions of shape {expected} (one per context frame, the "
                f"action that led to it), got shape {actions.shape} and dtype {actions.dtype}"
            )
        return frames, self.check_actions(actions, expected[:-1], where)

    def step(self, actions: np.ndarray):
        """One model step of every dream under ``actions`` (B, A): the shown frames (None when the
        observation needs none and the step decoded none), rewards (B, K), terminated (B,)."""
        return self.model.step(actions, decode=self.observe.decodes)

    def step_info(self, rewards: np.ndarray) -> dict[str, np.ndarray]:
        """Per-agent rewards under the ground truth's info keys (``reward_<agent>``)."""
        return {f"reward_{agent}": rewards[..., i] for i, agent in enumerate(self.agents)}
