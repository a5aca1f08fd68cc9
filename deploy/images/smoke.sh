#!/usr/bin/env bash
# Smoke-test a Gantry workload image the way the agent uses it: no network, offline
# `pip install --no-index --find-links` from a host-side wheel directory, tini as PID 1,
# root and non-root users.
#
#   deploy/images/smoke.sh [IMAGE]      (default gantry/python:3.11)
#
# Prints one line per check and "smoke: N passed, N failed"; exits non-zero on failure.
set -euo pipefail

IMAGE=${1:-gantry/python:3.11}
NAME=gantry-image-smoke-$$
PASS=0
FAIL=0
WHEELS=""

cleanup() {
  local rc=$?
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  [[ -n $WHEELS ]] && rm -rf "$WHEELS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every check runs offline, under a time limit.
run() { timeout 120 docker run --rm --name "$NAME" --network none "$@"; }

ok()   { PASS=$((PASS + 1)); printf 'smoke: ok    %s\n' "$1"; }
bad()  { FAIL=$((FAIL + 1)); printf 'smoke: FAIL  %s\n' "$1"; [[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/        | /'; }

# expect DESCRIPTION WANT COMMAND...: COMMAND must succeed and its last output line be WANT
expect() {
  local desc=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1) && [[ $(printf '%s\n' "$out" | tail -n 1) == "$want" ]]; then
    ok "$desc"
  else
    bad "$desc (wanted last line '$want')" "$out"
  fi
}

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  bad "image $IMAGE exists (run deploy/images/build.sh)"
  printf 'smoke: %d passed, %d failed\n' "$PASS" "$FAIL"
  exit 1
fi

# --- image configuration ---------------------------------------------------------
cfg=$(docker image inspect --format \
  '{{json .Config.Entrypoint}} {{index .Config.Labels "org.gantry.recipe"}}' "$IMAGE")
if [[ $cfg =~ ^\[\"/usr/bin/tini\",\"--\"\]\ [0-9a-f]{64}$ ]]; then
  ok "entrypoint is tini, recipe label set (${cfg##* })"
else
  bad "entrypoint is tini, recipe label set" "$cfg"
fi

# --- python, pip, tini -----------------------------------------------------------
expect "python3 -c 'print(1)' (network none)" 1 run "$IMAGE" python3 -c 'print(1)'
expect "python3 is Debian's 3.11" 3.11 \
  run "$IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'
expect "python3 -m pip --version" yes \
  run "$IMAGE" sh -c 'python3 -m pip --version && echo yes'
expect "tini is PID 1" tini run "$IMAGE" cat /proc/1/comm
expect "tini --version" yes run "$IMAGE" sh -c 'tini --version && echo yes'
expect "exit code passes through tini" rc=3 \
  sh -c "timeout 120 docker run --rm --name $NAME --network none $IMAGE python3 -c 'raise SystemExit(3)'; echo rc=\$?"
expect "UTF-8 by default (LANG=C.UTF-8)" 'utf-8 é' \
  run "$IMAGE" python3 -c 'import sys; print(sys.stdout.encoding, "\u00e9")'
expect "Debian CA bundle present for TLS" yes run "$IMAGE" python3 -c \
  'import ssl; n = ssl.create_default_context().cert_store_stats()["x509_ca"]; print("yes" if n > 50 else n)'
expect "non-root --user 1000:1000 runs python3" 1000 \
  run --user 1000:1000 "$IMAGE" python3 -c 'import os; print(os.getuid())'

# --- the agent's flow: wheels fetched on the host, installed offline --------------
# A tiny wheel stands in for what `pip download -r requirements.txt` leaves on the host.
WHEELS=$(mktemp -d "${TMPDIR:-/tmp}/gantry-smoke-wheels.XXXXXX")
chmod 755 "$WHEELS"
make_wheel='
import base64, hashlib, zipfile
files = {
    "gantry_smoke/__init__.py": "VALUE = 42\n",
    "gantry_smoke-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: gantry-smoke\nVersion: 1.0\n",
    "gantry_smoke-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: gantry-smoke\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile("/wheels/gantry_smoke-1.0-py3-none-any.whl", "w") as z:
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(text)))
        z.writestr(name, text)
    record.append("gantry_smoke-1.0.dist-info/RECORD,,")
    z.writestr("gantry_smoke-1.0.dist-info/RECORD", "\n".join(record) + "\n")
print("made")
'
expect "make a wheel in a host directory" made \
  run --user "$(id -u):$(id -g)" -v "$WHEELS:/wheels" "$IMAGE" python3 -c "$make_wheel"
expect "root: pip install --no-index --find-links (offline)" 42 \
  run -v "$WHEELS:/wheels:ro" "$IMAGE" sh -c \
  'pip install -q --no-index --find-links /wheels gantry-smoke && python3 -c "import gantry_smoke; print(gantry_smoke.VALUE)"'
expect "non-root: venv + pip install --no-index (offline)" 42 \
  run --user 1000:1000 -e HOME=/tmp -v "$WHEELS:/wheels:ro" "$IMAGE" sh -c \
  'python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q --no-index --find-links /wheels gantry-smoke && /tmp/venv/bin/python -c "import gantry_smoke; print(gantry_smoke.VALUE)"'

# --- docker stop reaches the training through tini --------------------------------
if docker run -d --rm --name "$NAME" --network none "$IMAGE" \
     python3 -c 'import time; time.sleep(300)' >/dev/null 2>&1; then
  t0=$(date +%s%N)
  docker stop -t 20 "$NAME" >/dev/null 2>&1 || true
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if (( ms < 5000 )); then ok "docker stop ends a python3 training promptly (${ms} ms)"
  else bad "docker stop ends a python3 training promptly" "took ${ms} ms (SIGTERM not forwarded?)"; fi
  for _ in $(seq 50); do docker inspect "$NAME" >/dev/null 2>&1 || break; sleep 0.1; done
else
  bad "docker stop ends a python3 training promptly" "could not start the container"
fi

printf 'smoke: %d passed, %d failed\n' "$PASS" "$FAIL"
(( FAIL == 0 ))
