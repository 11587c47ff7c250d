"""The command-line arguments that choose which dream a diagnostic script runs, shared
by the scripts in benchmarks/: the scene, the bundle, and how it serves (each unset
one falls back to the bundle's serving choice, ``worldenv/serving.py``)."""

import argparse
from pathlib import Path


def add_dream_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scene --checkpoint --model --sampling-steps --action-guidance --commit``."""
    parser.add_argument("--scene", default="cartpole")
    parser.add_argument("--checkpoint", type=Path, default=None, help="dream bundle; default: the scene's shipped one")
    parser.add_argument("--model", default=None, help="bundle component that dreams; default: the bundle's serving choice")
    parser.add_argument("--sampling-steps", type=int, default=None)
    parser.add_argument("--action-guidance", type=float, default=None)
    parser.add_argument(
        "--commit",
        choices=["latent", "frame"],
        default=None,
        help="what each dreamed frame leaves in the cache; default: the bundle's serving choice",
    )
