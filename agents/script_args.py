"""Command-line arguments from a typed dataclass: each field is a ``--flag`` with its
type, default and the comment-free help given in ``field(metadata={"help": ...})``."""

import argparse
import dataclasses
import typing


def parse(cls, argv: list[str] | None = None, description: str = ""):
    """Build ``cls`` (a dataclass) from ``argv``; ``--help`` lists every field."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        optional = type(None) in typing.get_args(kind)
        if choices:
            convert = type(choices[0])
        elif optional:
            convert = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        else:
            convert = kind
        parser.add_argument(flag, type=convert, default=default, choices=choices, help=help_text)
    return cls(**vars(parser.parse_args(argv)))
