"""How a bundle dreams: which component, how many sampling steps per frame, how
strongly the action acts, and what each new frame leaves in the KV cache.

``Serving`` is one such choice. A bundle records the one it ships with in
``metadata["serving"]`` (``worldenv compare --serve``); every dream, evaluation and
benchmark takes it from there unless told otherwise. Written out it reads
``component@steps[gG][+frame]``: ``teacher@8``, ``student_consistency@1g1.8``,
``student_consistency@1+frame``.

What a frame commits (``commit``): ``latent``, the sampled latent itself, as
CausVid and Self-Forcing do; or ``frame``, the latent of the decoded uint8 frame
(decode, then encode), what the dream shows, in the form every context frame had in
training. A few-step sample is a latent no encoder would produce; committed as it
is, the reward head reads it off its training distribution (the reacher student's
reward error at horizon 25 is twice the teacher@8's) and frames fade over long
dreams. Re-encoding costs one encoder pass per frame. The measurements:
docs/experiments/2026-11-29-commit-frame.md.
"""

import re
from dataclasses import asdict, dataclass

import numpy as np

COMMITS = ("latent", "frame")
RECORD_KEY = "serving"  # bundle metadata key
FALLBACK = {"model": "teacher", "sampling_steps": 4}  # bundles without a serving record


def check_guidance(action_guidance) -> float:
    if (
        isinstance(action_guidance, bool)
        or not isinstance(action_guidance, (int, float, np.number))
        or not np.isfinite(action_guidance)
        or action_guidance <= 0
    ):
        raise ValueError(f"expected action_guidance to be a positive number (1: none), got {action_guidance!r}")
    return float(action_guidance)


def check_commit(commit) -> str:
    if commit not in COMMITS:
        raise ValueError(f"expected commit to be one of {COMMITS}, got {commit!r}")
    return commit


def check_steps(sampling_steps) -> int:
    if isinstance(sampling_steps, bool) or not isinstance(sampling_steps, (int, np.integer)) or sampling_steps < 1:
        raise ValueError(f"expected sampling_steps to be a positive integer, got {sampling_steps!r}")
    return int(sampling_steps)


@dataclass(frozen=True)
class Serving:
    model: str  # the bundle component that dreams
    sampling_steps: int
    action_guidance: float = 1.0  # WorldModel's: 1 is the model as trained
    commit: str = "latent"

    def __post_init__(self):
        object.__setattr__(self, "sampling_steps", check_steps(self.sampling_steps))
        object.__setattr__(self, "action_guidance", check_guidance(self.action_guidance))
        check_commit(self.commit)

    @property
    def name(self) -> str:
        guidance = f"g{self.action_guidance:g}" if self.action_guidance != 1.0 else ""
        return f"{self.model}@{self.sampling_steps}{guidance}" + ("+frame" if self.commit == "frame" else "")

    @property
    def evaluations(self) -> int:
        """Network evaluations per dreamed frame: each sampling step (twice when guided: the
        action's answer and the zero action's) and the commit to the cache."""
        return self.sampling_steps * (1 if self.action_guidance == 1.0 else 2) + 1

    def world_model_kwargs(self) -> dict:
        return {"sampling_steps": self.sampling_steps, "action_guidance": self.action_guidance, "commit": self.commit}

    def record(self) -> dict:
        """The four fields by name: bundle metadata, and the ``config`` of evaluation reports
        (``dream_config.report_config``)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> "Serving":
        """From a dict holding the four fields by name (other keys ignored); records
        written before guidance or commits existed read as unguided latent commits."""
        return cls(record["model"], record["sampling_steps"], record.get("action_guidance", 1.0), record.get("commit", "latent"))

    @classmethod
    def parse(cls, text: str) -> "Serving":
        """``component@steps[gG][+frame]``, e.g. ``teacher@8`` or ``student_consistency@1g1.8+frame``."""
        match = re.fullmatch(r"([^@]+)@([0-9]+)(?:g([0-9]*\.?[0-9]+))?(\+frame)?", text)
        if not match or int(match[2]) < 1 or (match[3] is not None and float(match[3]) <= 0):
            raise ValueError(
                f"expected a model like teacher@8 (bundle component @ sampling steps), "
                f"student_consistency@1g1.8 (and action guidance 1.8) or student_consistency@1+frame "
                f"(committing the re-encoded frame), got {text!r}"
            )
        return cls(match[1], int(match[2]), float(match[3]) if match[3] else 1.0, "frame" if match[4] else "latent")


def serving_choice(
    metadata: dict,
    model: str | None = None,
    sampling_steps: int | None = None,
    action_guidance: float | None = None,
    commit: str | None = None,
) -> Serving:
    """What the caller asked, else the bundle's choice (``metadata["serving"]``), else
    teacher@4. A model other than the bundle's uses what the caller gives, else 4 steps,
    no guidance and the latent commit."""
    chosen = metadata.get(RECORD_KEY, FALLBACK)
    if model is None:
        model = chosen["model"]
    served = chosen if model == chosen["model"] else {}
    return Serving(
        model,
        sampling_steps if sampling_steps is not None else served.get("sampling_steps", FALLBACK["sampling_steps"]),
        action_guidance if action_guidance is not None else served.get("action_guidance", 1.0),
        commit if commit is not None else served.get("commit", "latent"),
    )
