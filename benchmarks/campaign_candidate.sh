#!/usr/bin/env bash
# A recipe variant's teacher as a shipping candidate: re-fit the served student to it,
# then score its served dream with the docs' commands (docs/results.md, "Reacher: the
# dream against MuJoCo") beside the shipped dream's scores, in one run on one machine.
#   benchmarks/campaign_candidate.sh VARIANT [STUDENT_STEPS]
# Writes runs/campaign/VARIANT/{bundle,consistency} and
# benchmarks/results/campaign/candidates/VARIANT-{eval,push3,push10}.json; the shipped
# dream's scores go to .../shipped-*.json (rerun in the same run, so the two compare).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:?usage: benchmarks/campaign_candidate.sh VARIANT [STUDENT_STEPS]}
steps=${2:-500}
source_bundle=runs/recipes/reacher/$variant/bundle
[ -d "$source_bundle" ] || { echo "no $source_bundle: train the variant first (worldenv recipes --table configs/recipes/reacher.yaml --variants $variant)" >&2; exit 2; }
work=runs/campaign/$variant
results=benchmarks/results/campaign/candidates
mkdir -p "$work" "$results"
[ -d "$work/bundle" ] || cp -r "$source_bundle" "$work/bundle"
extra=$(.venv/bin/python -c "import yaml,sys; t=yaml.safe_load(open('configs/recipes/reacher.yaml')); print(' '.join(t['variants']['$variant'].get('data', {}).get('extra_paths', [])))")
preset=$work/student.yaml
.venv/bin/python - "$preset" "$work" "$steps" $extra <<'PY'
import sys, yaml
preset, work, steps, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
section = {"bundle": f"{work}/bundle", "run": f"{work}/consistency", "train": {"steps": steps},
           **({"data": {"extra_paths": extra}} if extra else {})}
open(preset, "w").write(yaml.safe_dump({"base": "../../../benchmarks/configs/reacher-campaign-student.yaml", "consistency": section}))
PY
OMP_NUM_THREADS=1 .venv/bin/worldenv --threads 1 distill --method consistency --config "$preset" --resume --no-progress
for name in shipped "$variant"; do
  bundle=$([ "$name" = shipped ] && echo checkpoints/reacher || echo "$work/bundle")
  .venv/bin/worldenv --threads 1 eval --checkpoint "$bundle" --model student_consistency --steps 1 --commit frame \
    --episodes 8 --horizon 200 --json "$results/$name-eval.json"
  for at in 3 10; do
    .venv/bin/python benchmarks/action_response.py --scene reacher --checkpoint "$bundle" --actions 1 -1 --steps 10 \
      --gain-step $at --json "$results/$name-push$at.json"
  done
done
