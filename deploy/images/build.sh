#!/usr/bin/env bash
# Build Gantry's workload images locally, without any container registry.
#
#   deploy/images/build.sh [--force] [IMAGE...]
#
# With no IMAGE, builds all of them, in order (an image needs the ones above it):
#   gantry/python:3.11               Debian 12 rootfs (debootstrap), Python 3.11, pip
#   gantry/serving-pytorch:cpu       + Debian's python3-torch and the serving runtime
#   gantry/serving-sklearn-onnx:cpu  gantry/python:3.11 + scikit-learn, onnxruntime,
#                                    skl2onnx wheels and the serving runtime
#   gantry/serving-tensorflow:cpu    gantry/python:3.11 + tensorflow-cpu wheels and the
#                                    serving runtime
# Each image is labelled with a recipe hash (lib.sh, its package or pinned wheel list,
# the serving runtime's files, its base's recipe): when the label matches, nothing is
# done. Rootfs tarballs and wheels are cached under
# ${GANTRY_IMAGE_CACHE:-$HOME/.cache/gantry/images}, so re-importing after `docker rmi`
# takes seconds. See README.md beside this file.
#
# Environment:
#   GANTRY_IMAGE_CACHE   cache directory (default $HOME/.cache/gantry/images)
#   GANTRY_DEBIAN_MIRROR Debian mirror to debootstrap from (default: the host apt's)
#   GANTRY_IMAGE_TMPDIR  where a rootfs is assembled (default /var/tmp; must allow
#                        device nodes and exec, so not a nodev/noexec tmpfs)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=deploy/images/lib.sh
source "$HERE/lib.sh"

SUITE=bookworm
BASE_PACKAGES=(python3 python3-pip python3-venv ca-certificates tini bash coreutils)
SERVING_SRC=$HERE/serving/gantry_serve
# The serving images start the runtime unless told otherwise; trainings give a command.
SERVING_CHANGES=(
  "${BASE_CHANGES[@]}"
  'ENV GANTRY_MODEL_DIR=/mnt/models'
  'ENV GANTRY_PORT=8080'
  'EXPOSE 8080'
  'CMD ["python3","-m","gantry_serve"]'
)
ALL_IMAGES=(gantry/python:3.11 gantry/serving-pytorch:cpu gantry/serving-sklearn-onnx:cpu
            gantry/serving-tensorflow:cpu)

# ------------------------------------------------------------ verification ----
# Each runs offline against the freshly imported image; a failure keeps the old image.
verify_python() {
  verify_run python3 1 "$1" python3 -c 'print(1)'
  verify_run pip yes "$1" sh -c 'python3 -m pip --version && echo yes'
}
verify_pytorch() {
  verify_python "$1"
  # Debian's build calls itself 1.13.0a0; the package is 1.13.1+dfsg.
  verify_run torch ok "$1" python3 -c \
    'import torch; m = torch.jit.script(torch.nn.Linear(2, 1)); assert torch.__version__.startswith("1.13"); print("ok")'
  verify_run runtime ok "$1" python3 -c 'import gantry_serve.server; print("ok")'
}
verify_sklearn_onnx() {
  verify_python "$1"
  verify_run sklearn+onnx ok "$1" python3 -c '
import numpy, onnxruntime, skl2onnx
from sklearn.linear_model import LogisticRegression
m = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
onx = skl2onnx.to_onnx(m, numpy.array([[0.0]], dtype=numpy.float32))
s = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
s.run(None, {s.get_inputs()[0].name: numpy.array([[1.0]], dtype=numpy.float32)})
import gantry_serve.server
print("ok")'
}
verify_tensorflow() {
  verify_python "$1"
  verify_run tensorflow ok "$1" python3 -c '
import tensorflow as tf
assert tf.reduce_sum(tf.constant([1.0, 2.0])).numpy() == 3.0
import gantry_serve.server
print("ok")'
}

build_one() {
  case $1 in
    gantry/python:3.11)
      debian_image "$1" verify_python "" "${BASE_PACKAGES[@]}" -- "${BASE_CHANGES[@]}" 'CMD ["python3"]' ;;
    gantry/serving-pytorch:cpu)
      debian_image "$1" verify_pytorch "$SERVING_SRC" "${BASE_PACKAGES[@]}" python3-torch -- \
        "${SERVING_CHANGES[@]}" ;;
    gantry/serving-sklearn-onnx:cpu)
      wheel_image "$1" gantry/python:3.11 "$HERE/requirements/serving-sklearn-onnx.txt" \
        verify_sklearn_onnx "$SERVING_SRC" -- "${SERVING_CHANGES[@]}" ;;
    gantry/serving-tensorflow:cpu)
      # TensorFlow's C++ logging would bury the runtime's own one-line errors.
      wheel_image "$1" gantry/python:3.11 "$HERE/requirements/serving-tensorflow.txt" \
        verify_tensorflow "$SERVING_SRC" -- "${SERVING_CHANGES[@]}" 'ENV TF_CPP_MIN_LOG_LEVEL=2' ;;
    *) die "unknown image '$1' (known: ${ALL_IMAGES[*]})" ;;
  esac
}

# ------------------------------------------------------------------- main ----
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
FORCE=0
WANTED=()
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown argument '$arg' (usage: $0 [--force] [IMAGE...])" ;;
    *) WANTED+=("$arg") ;;
  esac
done
(( ${#WANTED[@]} )) || WANTED=("${ALL_IMAGES[@]}")

command -v docker >/dev/null || die "docker CLI not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "cannot reach the Docker daemon (is it running, and may this user use it?)"
ARCH=$(dpkg --print-architecture 2>/dev/null || true)
if [[ -z $ARCH ]]; then
  case $(uname -m) in
    x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) die "unknown architecture $(uname -m)" ;;
  esac
fi
CACHE_DIR=${GANTRY_IMAGE_CACHE:-$HOME/.cache/gantry/images}
mkdir -p "$CACHE_DIR"

# Serialise concurrent builds (CI and a developer, two agents...) on the cache lock;
# each image then looks at its label again, so a concurrent run's work is reused.
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.lock, waiting…"
  flock 9
fi

START=$SECONDS
for image in "${WANTED[@]}"; do
  # A subshell per image: its cleanup trap removes its own temporary containers,
  # tags and directories however it ends. (Not in an `if`: that would disable set -e.)
  set +e
  (set -e; cleanup_on_exit; build_one "$image")
  rc=$?
  set -e
  if (( rc )); then
    log "FAILED building $image after $(( SECONDS - START )) s"
    exit "$rc"
  fi
done
log "done in $(( SECONDS - START )) s"
