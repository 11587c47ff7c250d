"""Copy one bundle's component into another bundle under a new name, so that `worldenv
compare` can score models of two bundles on the same episodes in one run (both bundles
must share the tokenizer the component was trained on).

    python benchmarks/add_component.py --into /tmp/cmp-bundle --source checkpoints/reacher \\
        --component student_consistency --name student_consistency6
"""

import argparse
from pathlib import Path

from worldenv.checkpoint import load_bundle, update_bundle
from worldenv.world_model import load_backbone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, required=True, help="bundle that receives the component (changed in place)")
    parser.add_argument("--source", type=Path, required=True, help="bundle that holds it")
    parser.add_argument("--component", required=True, help="a backbone of --source (teacher or a student)")
    parser.add_argument("--name", required=True, help="its name in --into")
    args = parser.parse_args(argv)
    source, target = load_bundle(args.source), load_bundle(args.into)
    if source.records["tokenizer"]["sha256"] != target.records["tokenizer"]["sha256"]:
        parser.error(f"{args.source} and {args.into} have different tokenizers: {args.component} would dream other latents")
    if args.name in target.components:
        parser.error(f"{args.into} already has a component named {args.name!r}")
    update_bundle(args.into, components={args.name: (load_backbone(source, args.component), source.config(args.component))})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
