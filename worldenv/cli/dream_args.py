"""How a dream is served: the one group of flags (``add_dream_arguments``) that every
command that dreams takes, and the ``DreamConfig`` it builds."""

import argparse


# ---- how a dream is served: one group of flags for every command that dreams ----
def add_dream_arguments(
    p: argparse.ArgumentParser,
    defaults: dict | None = None,
    serving: bool = True,
    several: tuple[str, ...] = (),
    steps_flags: tuple[str, ...] = ("--sampling-steps",),
) -> None:
    """The flags of a ``DreamConfig`` (``dream_config`` builds it): the serving choice (unless
    ``serving`` is False: the command names its models otherwise), sampler, device and dtype.
    ``defaults``: the command's own, by field (the serving fields default to the bundle's
    choice); ``several``: fields that take one or more values, one dream each."""
    from typing import get_args

    from worldenv.dream_config import Commit, Dtype, Sampler  # without torch: --help stays instant

    defaults = {"sampler": "euler", "device": "cpu", "dtype": "auto", **(defaults or {})}
    group = p.add_argument_group("how the dream is served")
    names = []

    def add(name: str, *flags: str, **kwargs) -> None:
        default = defaults.get(name)
        shown = " ".join(map(str, default)) if name in several and default is not None else default
        kwargs["help"] += f" (default {shown})" if default is not None else " (default: the bundle's serving choice)"
        group.add_argument(*flags, dest=name, default=default, nargs="+" if name in several else None, **kwargs)
        names.append(name)

    if serving:
        add("model", "--model", help="bundle component that dreams")
        add("sampling_steps", *steps_flags, type=int, help="sampling steps per frame")
        add(
            "action_guidance",
            "--action-guidance",
            type=float,
            help="scale of the action's effect in the dream (1: the model as trained)",
        )
        add(
            "commit",
            "--commit",
            choices=get_args(Commit),
            help="what each dreamed frame leaves in the cache, the sampled latent or the re-encoded frame",
        )
    add("sampler", "--sampler", choices=get_args(Sampler), help="how each frame's sampling steps integrate")
    add("device", "--device", help="where the dream runs: cpu or cuda[:N]")
    add(
        "dtype",
        "--dtype",
        choices=get_args(Dtype),
        help="the networks' dtype (auto: float32 on the CPU, bfloat16 on cuda; bfloat16 is about 2x faster on a CPU with AMX)",
    )
    p.set_defaults(dream_fields=tuple(names))


def dream_config(args, **overrides):
    """The ``DreamConfig`` that ``args`` asks for (the flags of ``add_dream_arguments``), with
    ``overrides`` (a field of ``several`` takes one of its values here)."""
    from worldenv.dream_config import DreamConfig

    return DreamConfig(**{**{name: getattr(args, name) for name in args.dream_fields}, **overrides})
