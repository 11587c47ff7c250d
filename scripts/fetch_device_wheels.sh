#!/usr/bin/env bash
# Download, into .whl/ (git-ignored), the wheels that a GPU machine with PyTorch but
# without MuJoCo needs to run scripts/gpu_train.sh: MuJoCo's core bindings (not its
# studio: nothing here opens a viewer), gymnasium, pettingzoo and their small needs.
# PY_VERSION is the machine's Python (3.12 on the H200 machines of this project).
set -euo pipefail
PY_VERSION=${PY_VERSION:-3.12}
python3 -m pip download --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    mujoco-core==4.0.0 gymnasium==1.4.0 farama-notifications==0.0.6 pettingzoo==1.27.0 glfw==2.11.0 pyopengl==3.1.10
du -sh .whl
