"""Where a dream step's time goes: network evaluations, the tokenizer's decode and encode,
and the rest, for each way of serving a bundle, measured side by side in one run.

Each part is timed alone at the same batch, and the bound a few-step student's speed-up
meets (the parts its teacher also pays) is printed beside the measured ratio
(``worldenv.eval.step_anatomy``).

    python benchmarks/step_anatomy.py --checkpoint checkpoints/reacher \\
        --models teacher@8 teacher@16 student_consistency@1+frame student_consistency@1 \\
        --reference teacher@8 --envs 1 --rounds 5 --json benchmarks/results/step_anatomy.json
"""

import argparse
import json
from pathlib import Path

import torch

from worldenv.eval.step_anatomy import anatomy_report, anatomy_table
from worldenv.serving import Serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/reacher"))
    parser.add_argument(
        "--models",
        nargs="+",
        type=Serving.parse,
        default=[Serving.parse(m) for m in ("teacher@8", "student_consistency@1+frame")],
    )
    parser.add_argument(
        "--reference", type=Serving.parse, default=Serving.parse("teacher@8"), help="the model every speed-up is taken against"
    )
    parser.add_argument("--envs", type=int, default=1, help="dreams stepped together")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="timed calls of each part per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.envs < 1 or args.rounds < 1 or args.calls < 1:
        parser.error("--envs, --rounds and --calls: expected positive integers")
    torch.set_num_threads(args.threads)
    report = anatomy_report(args.checkpoint, args.models, args.reference, args.envs, args.dtype, args.rounds, args.calls)
    table = anatomy_table(report)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "table": table}, indent=2))


if __name__ == "__main__":
    main()
