#!/usr/bin/env bash
# Train reacher teachers at GPU scale on one machine, distil each into a 1-step student,
# evaluate both against MuJoCo, time the dream on the GPU; write one archive per variant to OUT.
#
#   set -o pipefail; bash scripts/gpu_train.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#
# 1. collects the reacher dataset with MuJoCo (configs/reacher.yaml, WORKERS processes),
# 2. for each of VARIANTS at once (a model this small leaves the GPU mostly idle, so
#    teachers that differ in their action histories train side by side at little cost
#    each), starting from a copy of the shipped bundle (tokenizer, probe, start contexts):
#    times a few teacher steps, trains the teacher for TEACHER_SECONDS, then times and
#    trains its consistency student (STUDENT_METHOD) for STUDENT_SECONDS, each with
#    CONFIG's sections and as many steps as the time allows,
# 3. evaluates teacher@8 and student@1 against MuJoCo and measures the teacher's response
#    to a push,
# 4. writes OUT/<variant>.tar.gz (the bundle's new teacher, bundle.json, metadata.json, card.md,
#    the reports and training curves) and OUT/<variant>-<student>.safetensors: unpack both into
#    a copy of checkpoints/reacher to ship it.
# Before all that, on the idle machine, it times the shipped student and teacher as a dream at
# batch 1 and 1024 on the GPU (bf16) beside MuJoCo step+render, into the log.
# Wheels in .whl/ (mujoco-core, gymnasium, ... for the machine's Python) are installed first.
# Knobs: VARIANTS ("name=action_history/action_flow_history ...", 0 = all), TEACHER_SECONDS (180),
# STUDENT_METHOD (consistency), STUDENT_SECONDS (75), EPISODES (1000), WORKERS (16),
# CONFIG, EVAL_EPISODES (8), EVAL_HORIZON (200), SPEED_BATCH (1024), SPEED_SECONDS (3), PYTHON, WHEELS (.whl).
set -euo pipefail
OUT=${1:?usage: scripts/gpu_train.sh OUT_DIR}
PY=${PYTHON:-python3}
VARIANTS=${VARIANTS:-"h4=4/0 h16f4=16/4 h16=16/0"}
TEACHER_SECONDS=${TEACHER_SECONDS:-180}
STUDENT_METHOD=${STUDENT_METHOD:-consistency}
STUDENT_SECONDS=${STUDENT_SECONDS:-75}
EPISODES=${EPISODES:-1000}
WORKERS=${WORKERS:-16}
CONFIG=${CONFIG:-configs/reacher-gpu.yaml}
EVAL_EPISODES=${EVAL_EPISODES:-8}
EVAL_HORIZON=${EVAL_HORIZON:-200}
STUDENT=student_$STUDENT_METHOD
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
echo "== $(date -u +%FT%TZ) device $DEVICE; variants $VARIANTS; teacher ${TEACHER_SECONDS}s, $STUDENT ${STUDENT_SECONDS}s"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

# First, on an idle machine: the shipped bundle's served student and its teacher (a new
# variant has the same size), as a dream env beside MuJoCo step+render.
echo "== dream speed $(date -u +%T)"
"$PY" -m worldenv.cli bench dream --checkpoint checkpoints/reacher --model "$STUDENT" --device "$DEVICE" \
    --envs 1 "${SPEED_BATCH:-1024}" --sampling-steps 1 --commit frame --seconds "${SPEED_SECONDS:-3}"
"$PY" -m worldenv.cli bench dream --checkpoint checkpoints/reacher --model teacher --device "$DEVICE" \
    --envs 1 "${SPEED_BATCH:-1024}" --sampling-steps 8 --seconds "${SPEED_SECONDS:-3}"

echo "== collect $(date -u +%T)"
"$PY" -m worldenv.cli collect --config configs/reacher.yaml --episodes "$EPISODES" --workers "$WORKERS" \
    --out "$ROOT/data/reacher" --no-progress

# train TASK CONFIG DIR SECONDS: time 30 steps of TASK (teacher or a distillation method) into
# a scratch copy of DIR/bundle, then train it for about SECONDS into DIR/bundle.
train() {
    local task=$1 config=$2 dir=$3 seconds=$4 command
    if [ "$task" = teacher ]; then command=("$PY" -m worldenv.train teacher)
    else command=("$PY" -m worldenv.cli distill --method "$task"); fi
    rm -rf "$dir/timing-$task" "$dir/timing-bundle" "$dir/run-$task"
    cp -r "$dir/bundle" "$dir/timing-bundle"
    "${command[@]}" --config "$config" --steps 30 --run "$dir/timing-$task" --bundle "$dir/timing-bundle" --no-progress
    local steps
    steps=$("$PY" - "$dir/timing-$task/metrics.jsonl" "$seconds" <<'PY'
import json, sys
last = [json.loads(line) for line in open(sys.argv[1])][-1]
per_step = last["seconds"] / last["step"]  # warm-up included: errs towards fewer steps
print(max(100, int(float(sys.argv[2]) / per_step)))
PY
)
    echo "== $(basename "$dir") $task: $steps steps $(date -u +%T)"
    mkdir -p "$dir/run-$task"
    cp "$dir/timing-$task/latents.safetensors" "$dir/run-$task/"  # encoded once
    "${command[@]}" --config "$config" --steps "$steps" --run "$dir/run-$task" --bundle "$dir/bundle" --no-progress
}

# variant NAME HISTORY FLOW_HISTORY: one teacher and its student, evaluated, in ROOT/NAME.
variant() {
    local name=$1 history=$2 flow=$3 dir=$ROOT/$1
    rm -rf "$dir/bundle" "$dir/reports" && mkdir -p "$dir/reports"
    cp -r checkpoints/reacher "$dir/bundle"
    "$PY" - "$CONFIG" "$dir/config.yaml" "$history" "$flow" <<'PY'
import sys, yaml
preset = yaml.safe_load(open(sys.argv[1]))
preset["teacher"]["model"].update(action_history=int(sys.argv[3]), action_flow_history=int(sys.argv[4]))
yaml.safe_dump(preset, open(sys.argv[2], "w"), sort_keys=False)
PY
    train teacher "$dir/config.yaml" "$dir" "$TEACHER_SECONDS"
    train "$STUDENT_METHOD" "$dir/config.yaml" "$dir" "$STUDENT_SECONDS"
    echo "== $name evaluate $(date -u +%T)"
    "$PY" -m worldenv.cli eval --checkpoint "$dir/bundle" --model teacher --steps 8 --episodes "$EVAL_EPISODES" \
        --horizon "$EVAL_HORIZON" --device "$DEVICE" --json "$dir/reports/eval-teacher.json" --update-card
    "$PY" -m worldenv.cli eval --checkpoint "$dir/bundle" --model "$STUDENT" --steps 1 --commit frame \
        --episodes "$EVAL_EPISODES" --horizon "$EVAL_HORIZON" --device "$DEVICE" --json "$dir/reports/eval-$STUDENT.json"
    "$PY" benchmarks/action_response.py --scene reacher --checkpoint "$dir/bundle" --model teacher --sampling-steps 8 \
        --actions 1 -1 --hold 3 --steps 12 --gain-step 10 --json "$dir/reports/action_response-teacher-hold3.json"
    cp "$dir/run-teacher/curve.png" "$dir/reports/teacher_curve.png"
    cp "$dir/run-teacher/metrics.jsonl" "$dir/reports/teacher_metrics.jsonl"
    cp "$dir/run-$STUDENT_METHOD/metrics.jsonl" "$dir/reports/${STUDENT}_metrics.jsonl"
    echo "== $name done $(date -u +%T)"
    cp "$dir/log.txt" "$dir/reports/log.txt"
    # The student travels beside the archive: each file that comes back must stay under 16 MiB.
    tar -czf "$OUT/$name.tar.gz" -C "$dir/bundle" teacher.safetensors bundle.json metadata.json card.md -C "$dir" reports
    cp "$dir/bundle/$STUDENT.safetensors" "$OUT/$name-$STUDENT.safetensors"
}

names=() pids=()
for spec in $VARIANTS; do
    name=${spec%%=*} histories=${spec#*=}
    mkdir -p "$ROOT/$name"
    variant "$name" "${histories%/*}" "${histories#*/}" > "$ROOT/$name/log.txt" 2>&1 &
    names+=("$name") pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
for name in "${names[@]}"; do echo "== $name's log, its end"; tail -n 30 "$ROOT/$name/log.txt"; done

[ "${#failed[@]}" = 0 ] || { echo "== failed: ${failed[*]} (their logs are above)"; exit 1; }
echo "== done $(date -u +%FT%TZ)"
