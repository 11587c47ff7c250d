#!/usr/bin/env bash
# Train the reacher teacher at GPU scale on one machine and write what changed to OUT.
#
#   set -o pipefail; bash scripts/gpu_teacher.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#
# 1. collects the reacher dataset with MuJoCo (configs/reacher.yaml, WORKERS processes),
# 2. starts from the shipped bundle (tokenizer, probe, start contexts: unchanged),
# 3. times a few teacher steps, then trains for BUDGET_SECONDS (configs/reacher-gpu.yaml),
# 4. evaluates against MuJoCo and measures action sensitivity,
# 5. copies the new teacher, bundle.json, metadata.json and card.md (and the numbers) to OUT:
#    copy those four into checkpoints/reacher/ to ship it.
# Wheels in .whl/ (mujoco-core, gymnasium, ... for the machine's Python) are installed first.
# Knobs: BUDGET_SECONDS (420), EPISODES (1000), WORKERS (16), CONFIG, EVAL_EPISODES (8), HELD_OUT (50,
# as in CONFIG), PYTHON, WHEELS (.whl).
set -euo pipefail
OUT=${1:?usage: scripts/gpu_teacher.sh OUT_DIR}
PY=${PYTHON:-python3}
BUDGET_SECONDS=${BUDGET_SECONDS:-420}
EPISODES=${EPISODES:-1000}
WORKERS=${WORKERS:-16}
CONFIG=${CONFIG:-configs/reacher-gpu.yaml}
EVAL_EPISODES=${EVAL_EPISODES:-8}
ROOT=/tmp/worldenv  # the scratch paths of configs/reacher-gpu.yaml
mkdir -p "$OUT" "$ROOT"

WHEELS=${WHEELS:-.whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
echo "== $(date -u +%FT%TZ) device $DEVICE, budget ${BUDGET_SECONDS}s"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

echo "== collect"
"$PY" -m worldenv.cli collect --config configs/reacher.yaml --episodes "$EPISODES" --workers "$WORKERS" \
    --out "$ROOT/data/reacher" --no-progress

echo "== time the teacher's steps"
rm -rf "$ROOT/bundle" "$ROOT/timing" "$ROOT/timing-bundle" "$ROOT/run"
cp -r checkpoints/reacher "$ROOT/bundle"
cp -r checkpoints/reacher "$ROOT/timing-bundle"
"$PY" -m worldenv.train teacher --config "$CONFIG" --steps 40 --run "$ROOT/timing" --bundle "$ROOT/timing-bundle" --no-progress
STEPS=$("$PY" - "$ROOT/timing/metrics.jsonl" "$BUDGET_SECONDS" <<'PY'
import json, sys
last = [json.loads(line) for line in open(sys.argv[1])][-1]
per_step = last["seconds"] / last["step"]  # warm-up included: errs towards fewer steps
print(max(100, int(float(sys.argv[2]) / per_step)))
PY
)
echo "== train $STEPS steps"
mkdir -p "$ROOT/run/teacher"
cp "$ROOT/timing/latents.safetensors" "$ROOT/run/teacher/"  # encoded once
"$PY" -m worldenv.train teacher --config "$CONFIG" --steps "$STEPS" --no-progress

echo "== evaluate"
"$PY" -m worldenv.cli eval --checkpoint "$ROOT/bundle" --episodes "$EVAL_EPISODES" --horizon 200 --device "$DEVICE" \
    --json "$OUT/eval.json" --update-card
"$PY" benchmarks/action_sensitivity.py --bundle "$ROOT/bundle" --data "$ROOT/data/reacher" --held-out "${HELD_OUT:-50}" \
    > "$OUT/action_sensitivity.json"
cp "$ROOT/bundle/teacher.safetensors" "$ROOT/bundle/bundle.json" "$ROOT/bundle/metadata.json" "$ROOT/bundle/card.md" "$OUT/"
cp "$ROOT/run/teacher/curve.png" "$OUT/teacher_curve.png"
echo "== done $(date -u +%FT%TZ)"
