"""How a dream is served, in one frozen value: ``DreamConfig``.

Every dream takes one: ``Dream.load(batch, config)``, the Gym, SB3 and PettingZoo envs
(``config=DreamConfig(...)``, or the same fields as keyword arguments, turned into a
``DreamConfig`` once by ``dream_config``), the evaluations (``EvalConfig.dream`` and its
kin), the agent scripts and the ``worldenv`` subcommands that dream (one shared group of
flags, ``worldenv.cli.dream_args.add_dream_arguments``). Its serving fields left None are the
bundle's own choice (``worldenv/serving.py``); which bundle is not part of it, so one
config serves any bundle.

Validation happens when the value is made, before anything loads; each error names
the field and what was expected.
"""

from dataclasses import dataclass, fields
from typing import Literal, get_args

import numpy as np

from worldenv.serving import Serving, check_commit, check_guidance, check_steps, serving_choice

Sampler = Literal["euler", "heun", "dpm"]  # worldenv.diffusion.samplers.SAMPLERS
Commit = Literal["latent", "frame"]  # worldenv.serving.COMMITS
Dtype = Literal["auto", "float32", "bfloat16"]  # auto: float32 on the CPU, bfloat16 on accelerators
Observation = Literal["pixels", "latent", "probe"]  # worldenv.envs.observation
StartPolicy = Literal["mix", "uniform", "jitter", "smooth", "gentle", "goal", "roam", "push"]  # data.policies.POLICIES


def check_device(device) -> str:
    """``device`` as a torch device this torch can run on, refused before anything loads: torch's
    own refusal comes from deep inside the first ``.to()`` (for CUDA on a CPU-only build, an
    AssertionError) and names no device that would do."""
    import torch  # here: the CLI reads this module's options for --help, which should not wait for torch

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
        raise ValueError(
            f"expected device to be one of {available} (what torch {torch.__version__} can use here), got {device!r}"
        )
    return str(resolved)


def check_dtype(dtype) -> str:
    """The networks' dtype by name: ``auto`` (also for None), ``float32`` or ``bfloat16``; a torch
    dtype is taken by its name."""
    from worldenv.world_model import resolve_dtype

    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        return "auto"
    return str(resolve_dtype(dtype, "cpu")).removeprefix("torch.")  # refuses any other, naming those there are


def _check_choice(value, name: str, choices: tuple, optional: bool = False) -> None:
    if (value is None and optional) or (isinstance(value, str) and value in choices):
        return
    none = "None or " if optional else ""
    raise ValueError(f"expected {name} to be {none}one of {sorted(choices)}, got {value!r}")


def _is_count(value, least: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and bool(value >= least)


@dataclass(frozen=True)
class DreamConfig:
    """``model``, ``sampling_steps``, ``action_guidance``, ``commit``: the serving choice, each
    the bundle's own where None (``serving_choice``). ``sampler``: how each frame's sampling
    steps integrate. ``device``, ``dtype``: where the networks run, in what (``auto``:
    float32 on the CPU, bfloat16 on accelerators, ``world_model.resolve_dtype``).

    The starts. ``start_contexts``: None, the bundle's bank of real starts; N, a bank of N
    recorded in the MuJoCo scene when the dream loads (``contexts.record_bundle_starts``: MuJoCo
    data collection, tens of milliseconds a start; its first starts are the bundle's). A
    policy trained in the dream sees only the layouts its starts hold: the duo's 32 are too
    few to learn from (agents/README.md, "Duo"), and a bank of hundreds is too large to
    ship. ``start_within``: each recorded start begins at a step drawn from the first
    ``start_within`` of its episode: mid-episode starts, for short imagined episodes that
    still cover where an episode goes. ``start_policy``: the exploration policy whose
    episodes they are.

    ``observation``: what an env's agent observes: ``pixels`` (the scene's frames), ``latent``
    (the frame's latent tokens, no decode) or ``probe`` (the bundle's state probe read off
    the frame); ``render()`` shows the frames either way (``worldenv.envs.observation``).
    ``compile``: the networks under ``torch.compile``, eager where that fails
    (``world_model.compile_networks``)."""

    model: str | None = None
    sampling_steps: int | None = None
    action_guidance: float | None = None
    commit: Commit | None = None
    sampler: Sampler = "euler"
    device: str = "cpu"
    dtype: Dtype = "auto"
    start_contexts: int | None = None
    start_within: int = 0
    start_policy: StartPolicy = "mix"
    observation: Observation = "pixels"
    compile: bool = False

    def __post_init__(self):
        normalized: dict[str, object] = {"device": check_device(self.device), "dtype": check_dtype(self.dtype)}
        if self.model is not None and not isinstance(self.model, str):
            raise ValueError(
                f"expected model to be None (the bundle's choice) or the name of a bundle component, got {self.model!r}"
            )
        if self.sampling_steps is not None:
            normalized["sampling_steps"] = check_steps(self.sampling_steps)
        if self.action_guidance is not None:
            normalized["action_guidance"] = check_guidance(self.action_guidance)
        if self.commit is not None:
            check_commit(self.commit)
        _check_choice(self.sampler, "sampler", get_args(Sampler))
        if self.start_contexts is not None:
            if not _is_count(self.start_contexts, 1):
                raise ValueError(
                    f"expected start_contexts to be None (the bundle's bank) or a positive integer, got {self.start_contexts!r}"
                )
            normalized["start_contexts"] = int(self.start_contexts)
        if not _is_count(self.start_within, 0):
            raise ValueError(f"expected start_within to be a number of steps >= 0, got {self.start_within!r}")
        normalized["start_within"] = int(self.start_within)
        _check_choice(self.start_policy, "start_policy", get_args(StartPolicy))
        _check_choice(self.observation, "observation", get_args(Observation))
        if not isinstance(self.compile, (bool, np.bool_)):
            raise ValueError(f"expected compile to be True or False, got {self.compile!r}")
        normalized["compile"] = bool(self.compile)
        if (self.start_within or self.start_policy != "mix") and self.start_contexts is None:
            raise ValueError(
                f"expected start_contexts=N with start_within={self.start_within!r} and "
                f"start_policy={self.start_policy!r}: they shape a bank of starts recorded when the dream "
                "loads (the bundle's own bank is fixed)"
            )
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    def serving(self, metadata: dict) -> Serving:
        """The serving choice for a bundle with ``metadata``: these fields, the bundle's where None."""
        return serving_choice(metadata, self.model, self.sampling_steps, self.action_guidance, self.commit)

    def world_model_kwargs(self, serving: Serving) -> dict:
        """``WorldModel``'s keyword arguments for a dream served as ``serving`` (``self.serving``)."""
        return {
            "sampler": self.sampler,
            "device": self.device,
            "dtype": self.dtype,
            "compile": self.compile,
            **serving.world_model_kwargs(),
        }

    def without_starts(self, where: str) -> "DreamConfig":
        """This config, refused if it asks for recorded starts: ``where`` starts its dreams from
        MuJoCo episodes of its own."""
        if self.start_contexts is not None:
            raise ValueError(
                f"{where}: its dreams start from MuJoCo episodes of its own; expected start_contexts=None, "
                f"got {self.start_contexts!r}"
            )
        return self


FIELDS = tuple(f.name for f in fields(DreamConfig))


def dream_config(config: DreamConfig | None, settings: dict, where: str) -> DreamConfig:
    """An env's ``DreamConfig``: ``config``, or one made from ``settings``, the env's keyword
    arguments named as ``DreamConfig``'s fields; not both. The one place every env turns its
    keyword arguments into a config."""
    unknown = sorted(set(settings) - set(FIELDS))
    if unknown:
        raise TypeError(
            f"{where}: unknown keyword arguments {unknown}; expected the env's own or DreamConfig's "
            f"fields {list(FIELDS)} (or config=DreamConfig(...))"
        )
    if config is None:
        return DreamConfig(**settings)
    if not isinstance(config, DreamConfig):
        raise TypeError(f"{where}: expected config to be None or a DreamConfig, got {type(config).__name__}")
    if settings:
        raise ValueError(
            f"{where}: expected the dream's settings either as config= or as keyword arguments, got both "
            f"(config and {sorted(settings)})"
        )
    return config


def report_config(config, serving: Serving | None) -> dict:
    """An evaluation's dataclass ``config`` (its ``dream`` a ``DreamConfig``) as its report records
    it, flat, the form every report and bundle card has had: its own fields, then the sampler,
    the ``serving`` choice (none where each model of a comparison has its own) and the dtype."""
    own = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "dream"}
    own = {name: list(value) if isinstance(value, tuple) else value for name, value in own.items()}  # as JSON has them
    return {**own, "sampler": config.dream.sampler, **(serving.record() if serving else {}), "dtype": config.dream.dtype}
