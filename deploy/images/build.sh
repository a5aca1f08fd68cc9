#!/usr/bin/env bash
# Build Gantry's workload images locally, without any container registry.
#
#   deploy/images/build.sh [--force]
#
# gantry/python:3.11 is a minimal Debian 12 (bookworm) rootfs made by debootstrap from
# the Debian mirror the host's apt already uses, cleaned, and imported with
# `docker import`. The image is labelled with a recipe hash (sha256 of this script,
# the package list, the suite and the architecture): when an image with that label
# exists, nothing is done. The rootfs tarball is cached under
# ${GANTRY_IMAGE_CACHE:-$HOME/.cache/gantry/images} so that re-importing after
# `docker rmi` takes seconds. See README.md beside this file.
#
# Environment:
#   GANTRY_IMAGE_CACHE   cache directory (default $HOME/.cache/gantry/images)
#   GANTRY_DEBIAN_MIRROR Debian mirror to debootstrap from (default: the host apt's)
#   GANTRY_IMAGE_TMPDIR  where the rootfs is assembled (default /var/tmp; must allow
#                        device nodes and exec, so not a nodev/noexec tmpfs)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# ---------------------------------------------------------------- the recipe ----
IMAGE=gantry/python:3.11
SUITE=bookworm
VARIANT=minbase
PACKAGES=(python3 python3-pip python3-venv ca-certificates tini bash coreutils)
IMPORT_CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'ENV PIP_DISABLE_PIP_VERSION_CHECK=1'
  'ENV PIP_ROOT_USER_ACTION=ignore'
  'WORKDIR /root'
  'ENTRYPOINT ["/usr/bin/tini","--"]'
  'CMD ["python3"]'
)
LABEL_KEY=org.gantry.recipe
# ---------------------------------------------------------------------------------

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_DIR=${GANTRY_IMAGE_CACHE:-$HOME/.cache/gantry/images}
FORCE=0
START=$SECONDS

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"
}

for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$arg' (usage: $0 [--force])" ;;
  esac
done

command -v docker >/dev/null || die "docker CLI not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "cannot reach the Docker daemon (is it running, and may this user use it?)"

ARCH=$(dpkg --print-architecture 2>/dev/null || true)
if [[ -z $ARCH ]]; then
  case $(uname -m) in
    x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) die "unknown architecture $(uname -m)" ;;
  esac
fi

RECIPE=$({
  cat "$SCRIPT"
  printf 'suite=%s\nvariant=%s\narch=%s\n' "$SUITE" "$VARIANT" "$ARCH"
  printf 'package=%s\n' "${PACKAGES[@]}"
} | sha256sum | cut -d' ' -f1)

image_recipe() { # the recipe label of an image, or nothing
  docker image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true
}
image_mb() {
  local bytes
  bytes=$(docker image inspect --format '{{.Size}}' "$1")
  echo $(( (bytes + 500000) / 1000000 ))
}

if (( ! FORCE )) && [[ $(image_recipe "$IMAGE") == "$RECIPE" ]]; then
  log "$IMAGE up to date (recipe ${RECIPE:0:12}), nothing to do"
  exit 0
fi

# Serialise concurrent builds (CI and a developer, two agents...) on the cache lock,
# then look again: another run may have just built the same recipe.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.lock, waiting…"
  flock 9
fi
if (( ! FORCE )) && [[ $(image_recipe "$IMAGE") == "$RECIPE" ]]; then
  log "$IMAGE up to date (recipe ${RECIPE:0:12}, built by a concurrent run)"
  exit 0
fi

TARBALL=$CACHE_DIR/python-3.11-$SUITE-$ARCH-$RECIPE.tar.gz
TMP_TAG="gantry/python:build-${RECIPE:0:12}-$$"
VERIFY_NAME="gantry-image-verify-$$"
WORK=""

cleanup() {
  local rc=$?
  set +e
  docker rm -f "$VERIFY_NAME" >/dev/null 2>&1
  docker image inspect "$TMP_TAG" >/dev/null 2>&1 && docker rmi "$TMP_TAG" >/dev/null 2>&1
  if [[ -n $WORK && -d $WORK ]]; then
    # debootstrap mounts proc/sys/dev inside the target; if it was interrupted they
    # may still be there. Unmount (deepest first) before deleting anything.
    local m
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$WORK"
  fi
  rm -f "$TARBALL.partial"
  (( rc )) && log "FAILED after $(( SECONDS - START )) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers ----
debian_mirror() { # the host apt's Debian mirror that serves $SUITE
  if [[ -n ${GANTRY_DEBIAN_MIRROR:-} ]]; then echo "$GANTRY_DEBIAN_MIRROR"; return; fi
  local files=() f
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  (( ${#files[@]} )) || { echo http://deb.debian.org/debian; return; }
  # Emit "uri suite" for every enabled binary (deb) source, one-line and deb822 format.
  awk '
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    function flush(   i, j, nu, ns, us, ss) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
        nu = split(uris, us, /[ \t]+/); ns = split(suites, ss, /[ \t]+/)
        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
          if (us[i] != "" && ss[j] != "") print us[i], ss[j]
      }
      types = uris = suites = ""; enabled = "yes"
    }
    deb822 && /^[ \t]*$/ { flush(); next }
    /^[ \t]*#/ { next }
    deb822 && /^[A-Za-z-]+:/ {
      key = tolower(substr($0, 1, index($0, ":") - 1)); val = substr($0, index($0, ":") + 1)
      if (key == "types") types = val; else if (key == "uris") uris = val
      else if (key == "suites") suites = val; else if (key == "enabled") enabled = val
      gsub(/^[ \t]+|[ \t]+$/, "", enabled)
      next
    }
    !deb822 && $1 == "deb" {
      line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
      if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
      split(line, p, /[ \t]+/); print p[1], p[2]
    }
    END { flush() }
  ' "${files[@]}" 2>/dev/null |
  awk -v s="$SUITE" '
    $1 !~ /^(https?|ftp|file):/ || $1 ~ /security/ { next }
    $2 == s && !exact { exact = $1 }
    index($2, s "-") == 1 && !near { near = $1 }
    END { if (exact) print exact; else if (near) print near; else print "http://deb.debian.org/debian" }
  '
}

ensure_host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
  command -v gpgv >/dev/null || missing+=(gpgv)
  command -v wget >/dev/null || missing+=(wget)
  (( ${#missing[@]} )) || return 0
  command -v apt-get >/dev/null || die "need ${missing[*]} and there is no apt-get to install them"
  log "installing host tools: ${missing[*]}…"
  local aptlog
  aptlog=$(mktemp)
  if ! { apt-get update -qq &&
         apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
           "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -n 20 "$aptlog" >&2; rm -f "$aptlog"
    die "apt-get could not install ${missing[*]}"
  fi
  rm -f "$aptlog"
}

use_apt_proxy() { # debootstrap fetches with wget: give it the proxy apt is told to use
  local APT_HTTP_PROXY="" APT_HTTPS_PROXY=""
  command -v apt-config >/dev/null || return 0
  eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy APT_HTTPS_PROXY Acquire::https::Proxy)"
  if [[ -n $APT_HTTP_PROXY && $APT_HTTP_PROXY != DIRECT && -z ${http_proxy:-} ]]; then
    export http_proxy=$APT_HTTP_PROXY
  fi
  if [[ -n $APT_HTTPS_PROXY && $APT_HTTPS_PROXY != DIRECT && -z ${https_proxy:-} ]]; then
    export https_proxy=$APT_HTTPS_PROXY
  fi
}

clean_rootfs() { # keep the image small and free of host specifics
  local r=$1
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
         "$r"/var/lib/dpkg/*-old "$r"/var/cache/ldconfig/aux-cache \
         "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.cache
  mkdir -p "$r"/var/lib/apt/lists/partial "$r"/var/cache/apt/archives/partial
  find "$r"/var/log -type f -delete
  # Documentation: keep only the copyright files (licence compliance), drop the rest.
  find "$r"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find "$r"/usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/groff/* \
         "$r"/usr/share/lintian/* "$r"/usr/share/linda/*
  find "$r"/usr/share/locale -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  # ... and keep it that way if someone apt-installs into a derived image.
  mkdir -p "$r"/etc/dpkg/dpkg.cfg.d
  cat >"$r"/etc/dpkg/dpkg.cfg.d/gantry-nodoc <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  # Host files debootstrap copied in: Docker bind-mounts its own at run time.
  : >"$r"/etc/resolv.conf
  : >"$r"/etc/hostname
  [[ -e $r/etc/machine-id ]] && : >"$r"/etc/machine-id
  # A container is its own environment: let `pip install --no-index --find-links`
  # install a training's requirements without --break-system-packages (PEP 668).
  rm -f "$r"/usr/lib/python3*/EXTERNALLY-MANAGED
}

# -------------------------------------------------------------------- build ----
# --force ignores the cache but only replaces it once the new tarball is complete, so an
# interrupted forced build loses nothing.
NEED_ROOTFS=1
if (( ! FORCE )) && [[ -f $TARBALL && -f $TARBALL.sha256 ]]; then
  if (cd "$CACHE_DIR" && sha256sum --quiet -c "$(basename "$TARBALL").sha256") >/dev/null 2>&1; then
    log "using cached rootfs $(basename "$TARBALL")"
    NEED_ROOTFS=0
  else
    log "cached rootfs $(basename "$TARBALL") is corrupt, rebuilding"
    rm -f "$TARBALL" "$TARBALL.sha256"
  fi
fi

if (( NEED_ROOTFS )); then
  [[ $EUID -eq 0 ]] || die "building the rootfs needs root (debootstrap); run as root"
  ensure_host_tools
  use_apt_proxy
  MIRROR=$(debian_mirror)
  WORK=$(mktemp -d "${GANTRY_IMAGE_TMPDIR:-/var/tmp}/gantry-image.XXXXXX")
  ROOTFS=$WORK/rootfs
  log "debootstrap $SUITE ($VARIANT, $ARCH) from $MIRROR…"
  t0=$SECONDS
  if ! debootstrap --variant="$VARIANT" --arch="$ARCH" \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg --force-check-gpg \
        --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.out" 2>&1; then
    tail -n 25 "$WORK/debootstrap.out" >&2
    [[ -f $ROOTFS/debootstrap/debootstrap.log ]] && tail -n 25 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  log "debootstrap done in $(( SECONDS - t0 )) s; cleaning…"
  clean_rootfs "$ROOTFS"
  for bin in python3 tini bash; do
    [[ -x $ROOTFS/usr/bin/$bin ]] || die "rootfs lacks /usr/bin/$bin"
  done
  log "packing rootfs ($(du -sm --one-file-system "$ROOTFS" | cut -f1) MB)…"
  # Stable member order and numeric owners; /dev, /proc, /sys contents are supplied
  # by the container runtime.
  tar -C "$ROOTFS" --one-file-system --numeric-owner --sort=name \
      --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    gzip -6 >"$TARBALL.partial"
  rm -f "$TARBALL.sha256"
  mv "$TARBALL.partial" "$TARBALL"
  (cd "$CACHE_DIR" && sha256sum "$(basename "$TARBALL")" >"$(basename "$TARBALL").sha256")
  rm -rf --one-file-system "$WORK"; WORK=""
  # Keep the three newest cached recipes of this image (names are ours: hex, no spaces).
  # shellcheck disable=SC2012
  ls -1t "$CACHE_DIR"/python-3.11-*.tar.gz 2>/dev/null | tail -n +4 |
    while read -r old; do rm -f "$old" "$old.sha256"; done || true
fi

log "importing…"
changes=()
for c in "${IMPORT_CHANGES[@]}" "LABEL $LABEL_KEY=$RECIPE"; do changes+=(--change "$c"); done
gzip -dc "$TARBALL" | docker import "${changes[@]}" - "$TMP_TAG" >/dev/null

# Never tag an image that cannot run a training: check it first, offline.
out=$(docker run --rm --name "$VERIFY_NAME" --network none "$TMP_TAG" \
        python3 -c 'print(1)' 2>&1) || die "verification run failed: $out"
[[ $out == 1 ]] || die "verification: python3 printed '$out', wanted 1"
out=$(docker run --rm --name "$VERIFY_NAME" --network none "$TMP_TAG" \
        python3 -m pip --version 2>&1) || die "verification: pip failed: $out"
log "verified: $out"

old_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker tag "$TMP_TAG" "$IMAGE"
docker rmi "$TMP_TAG" >/dev/null
new_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true  # still used by a container: leave it
fi
log "$IMAGE ready ($(image_mb "$IMAGE") MB, recipe ${RECIPE:0:12}) in $(( SECONDS - START )) s"
