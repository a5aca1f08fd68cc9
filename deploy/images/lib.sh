# Shared machinery of Gantry's local image builds; sourced by build.sh, never run.
#
# Two kinds of image, both ending as a rootfs tarball cached by recipe hash and put
# into Docker with `docker import` (no registry, no `docker build`, no network inside
# any container):
#   debian_image  a Debian rootfs made by debootstrap from the host apt's mirror, with
#                 extra Debian packages and optional files copied in;
#   wheel_image   an existing local image plus Python wheels that `pip download` fetched
#                 on the host and `pip install --no-index` installs offline.
# Every image carries its recipe hash as the label org.gantry.recipe: when the label
# matches, nothing is done; when the cached tarball matches, it is only re-imported.
# A new image is verified under a temporary tag before it gets its real tag.
#
# The caller sets SUITE, ARCH, CACHE_DIR and FORCE and holds the cache lock.

LABEL_KEY=org.gantry.recipe
LIB_SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
# Image configuration every image shares (the ENV/WORKDIR/ENTRYPOINT of the base).
BASE_CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'ENV PIP_DISABLE_PIP_VERSION_CHECK=1'
  'ENV PIP_ROOT_USER_ACTION=ignore'
  'WORKDIR /root'
  'ENTRYPOINT ["/usr/bin/tini","--"]'
)
# Where Debian's python3 looks for locally installed packages.
SITE_PACKAGES=/usr/local/lib/python3.11/dist-packages

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

image_recipe() { # the recipe label of an image, or nothing
  docker image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true
}
image_mb() {
  local bytes
  bytes=$(docker image inspect --format '{{.Size}}' "$1")
  echo $(( (bytes + 500000) / 1000000 ))
}
slug() { # gantry/serving-pytorch:cpu -> serving-pytorch-cpu
  local s=${1#gantry/}
  echo "${s//[:\/]/-}"
}
recipe_hash() { # sha256 of stdin plus this file: what decides whether to rebuild
  { cat "$LIB_SCRIPT"; cat; } | sha256sum | cut -d' ' -f1
}
tree_digest() { # a stable digest of the files under a directory (names and contents)
  (cd "$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
     LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- cleanup ----
# Each image is built in a subshell that calls cleanup_on_exit; whatever it registers
# here is removed however it ends.
CLEAN_CONTAINERS=() CLEAN_IMAGES=() CLEAN_FILES=() CLEAN_DIRS=()
cleanup_on_exit() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
cleanup() {
  local rc=$? x m
  set +e
  for x in "${CLEAN_CONTAINERS[@]}"; do docker rm -f "$x" >/dev/null 2>&1; done
  for x in "${CLEAN_IMAGES[@]}"; do
    docker image inspect "$x" >/dev/null 2>&1 && docker rmi "$x" >/dev/null 2>&1
  done
  for x in "${CLEAN_DIRS[@]}"; do
    [[ -n $x && -d $x ]] || continue
    # debootstrap mounts proc/sys/dev inside the target; if it was interrupted they
    # may still be there. Unmount (deepest first) before deleting anything.
    awk -v w="$x/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$x"
  done
  for x in "${CLEAN_FILES[@]}"; do rm -f "$x"; done
  exit "$rc"
}

# ------------------------------------------------------------ host tools ----
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

# --------------------------------------------------------- rootfs tarballs ----
cached_tarball() { # TARBALL: true when it and its checksum are intact
  local t=$1
  [[ -f $t && -f $t.sha256 ]] || return 1
  if (cd "$CACHE_DIR" && sha256sum --quiet -c "$(basename "$t").sha256") >/dev/null 2>&1; then
    log "using cached rootfs $(basename "$t")"
    return 0
  fi
  log "cached rootfs $(basename "$t") is corrupt, rebuilding"
  rm -f "$t" "$t.sha256"
  return 1
}

store_tarball() { # TARBALL PREFIX < tar stream: gzip it into the cache atomically
  local t=$1 prefix=$2
  CLEAN_FILES+=("$t.partial")
  gzip -"${GANTRY_IMAGE_GZIP_LEVEL:-3}" >"$t.partial"
  rm -f "$t.sha256"
  mv "$t.partial" "$t"
  (cd "$CACHE_DIR" && sha256sum "$(basename "$t")" >"$(basename "$t").sha256")
  # Keep the two newest cached recipes of this image (names are ours: no spaces).
  # shellcheck disable=SC2012
  ls -1t "$CACHE_DIR/$prefix"-*.tar.gz 2>/dev/null | tail -n +3 |
    while read -r old; do rm -f "$old" "$old.sha256"; done || true
}

# import_image IMAGE RECIPE TARBALL VERIFY_FN CHANGE...: import under a temporary tag,
# run VERIFY_FN TMP_TAG (which dies on failure), then tag and drop the old image.
import_image() {
  local image=$1 recipe=$2 tarball=$3 verify=$4 tmp old_id new_id c
  shift 4
  tmp="gantry/build:$(slug "$image")-${recipe:0:12}-$$"
  CLEAN_IMAGES+=("$tmp")
  log "importing $image…"
  local changes=()
  for c in "$@" "LABEL $LABEL_KEY=$recipe"; do changes+=(--change "$c"); done
  gzip -dc "$tarball" | docker import "${changes[@]}" - "$tmp" >/dev/null
  "$verify" "$tmp"
  old_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  docker tag "$tmp" "$image"
  docker rmi "$tmp" >/dev/null
  new_id=$(docker image inspect --format '{{.Id}}' "$image")
  if [[ -n $old_id && $old_id != "$new_id" ]]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true  # still used by a container: leave it
  fi
}

# verify_run NAME WANT IMAGE COMMAND...: run offline; the last output line must be WANT.
verify_run() {
  local name=$1 want=$2 image=$3 out cname="gantry-image-verify-$$"
  shift 3
  CLEAN_CONTAINERS+=("$cname")
  out=$(timeout 300 docker run --rm --name "$cname" --network none "$image" "$@" 2>&1) ||
    die "verification '$name' failed: $out"
  [[ $(printf '%s\n' "$out" | tail -n 1) == "$want" ]] ||
    die "verification '$name': wanted '$want', got: $out"
  log "verified $name"
}

up_to_date() { # IMAGE RECIPE
  (( ! FORCE )) && [[ $(image_recipe "$1") == "$2" ]]
}

# ---------------------------------------------------------- debian images ----
# debian_image IMAGE VERIFY_FN COPY_DIR PACKAGES... -- CHANGE...
# COPY_DIR (or "") is copied into the rootfs's site-packages.
debian_image() {
  local image=$1 verify=$2 copy=$3 packages=() changes=() recipe tarball prefix
  shift 3
  while (( $# )) && [[ $1 != -- ]]; do packages+=("$1"); shift; done
  shift
  changes=("$@")
  recipe=$({
    printf 'image=%s\nsuite=%s\nvariant=minbase\narch=%s\n' "$image" "$SUITE" "$ARCH"
    printf 'package=%s\n' "${packages[@]}"
    printf 'change=%s\n' "${changes[@]}"
    [[ -z $copy ]] || printf 'copy=%s\n' "$(tree_digest "$copy")"
    declare -f "$verify"
  } | recipe_hash)
  if up_to_date "$image" "$recipe"; then
    log "$image up to date (recipe ${recipe:0:12}), nothing to do"
    return 0
  fi
  local start=$SECONDS
  prefix=$(slug "$image")-$SUITE-$ARCH
  tarball=$CACHE_DIR/$prefix-$recipe.tar.gz
  if (( FORCE )) || ! cached_tarball "$tarball"; then
    [[ $EUID -eq 0 ]] || die "building a rootfs needs root (debootstrap); run as root"
    ensure_host_tools
    use_apt_proxy
    local mirror work rootfs t0=$SECONDS
    mirror=$(debian_mirror)
    work=$(mktemp -d "${GANTRY_IMAGE_TMPDIR:-/var/tmp}/gantry-image.XXXXXX")
    CLEAN_DIRS+=("$work")
    rootfs=$work/rootfs
    # Packages are kept between builds (and shared by images) so a second image or a
    # recipe change does not download everything again.
    mkdir -p "$CACHE_DIR/debs"
    log "debootstrap $SUITE (minbase, $ARCH, ${#packages[@]} packages) for $image from $mirror…"
    if ! debootstrap --variant=minbase --arch="$ARCH" --cache-dir="$CACHE_DIR/debs" \
          --keyring=/usr/share/keyrings/debian-archive-keyring.gpg --force-check-gpg \
          --include="$(IFS=,; echo "${packages[*]}")" \
          "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.out" 2>&1; then
      tail -n 25 "$work/debootstrap.out" >&2
      [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 25 "$rootfs/debootstrap/debootstrap.log" >&2
      die "debootstrap failed"
    fi
    log "debootstrap done in $(( SECONDS - t0 )) s; cleaning…"
    clean_rootfs "$rootfs"
    for bin in python3 tini bash; do
      [[ -x $rootfs/usr/bin/$bin ]] || die "rootfs lacks /usr/bin/$bin"
    done
    if [[ -n $copy ]]; then
      mkdir -p "$rootfs$SITE_PACKAGES"
      cp -r "$copy" "$rootfs$SITE_PACKAGES/"
      find "$rootfs$SITE_PACKAGES" -name __pycache__ -prune -exec rm -rf {} +
      chmod -R a+rX "$rootfs$SITE_PACKAGES"
    fi
    log "packing rootfs ($(du -sm --one-file-system "$rootfs" | cut -f1) MB)…"
    # Stable member order and numeric owners; /dev, /proc, /sys contents are supplied
    # by the container runtime.
    tar -C "$rootfs" --one-file-system --numeric-owner --sort=name \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
      store_tarball "$tarball" "$prefix"
  fi
  import_image "$image" "$recipe" "$tarball" "$verify" "${changes[@]}"
  log "$image ready ($(image_mb "$image") MB, recipe ${recipe:0:12}) in $(( SECONDS - start )) s"
}

# ----------------------------------------------------------- wheel images ----
# fetch_wheels REQUIREMENTS: prints a cache directory holding every wheel the pinned
# requirements need for CPython 3.11 on manylinux x86_64, downloading only once.
fetch_wheels() {
  local req=$1 dir
  dir=$CACHE_DIR/wheels/$(basename "$req" .txt)-$(sha256sum <"$req" | cut -c1-16)
  if [[ -f $dir/.complete ]]; then
    log "using cached wheels $(basename "$dir")"
  else
    [[ $ARCH == amd64 ]] || die "wheel images are built for x86_64 only (this is $ARCH)"
    local pip
    pip=$(command -v pip3 || command -v pip) || die "need pip on the host to download wheels"
    rm -rf "$dir.partial"
    CLEAN_DIRS+=("$dir.partial")
    log "downloading wheels for $(basename "$req")…"
    local t0=$SECONDS
    # --no-deps: the requirements file lists the whole closure, pinned.
    if ! PIP_FIND_LINKS='' "$pip" download --quiet --no-deps --only-binary=:all: \
          --python-version 3.11 --implementation cp --abi cp311 \
          --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
          --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
          --platform linux_x86_64 --platform any \
          -d "$dir.partial" -r "$req" >&2; then
      die "pip download failed for $req"
    fi
    cp "$req" "$dir.partial/requirements.txt"
    touch "$dir.partial/.complete"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
    log "downloaded $(du -sm "$dir" | cut -f1) MB of wheels in $(( SECONDS - t0 )) s"
    # Drop wheel sets of older requirement versions of the same image.
    find "$CACHE_DIR/wheels" -mindepth 1 -maxdepth 1 -type d \
      -name "$(basename "$req" .txt)-*" ! -path "$dir" -exec rm -rf {} +
  fi
  echo "$dir"
}

# wheel_image IMAGE BASE REQUIREMENTS VERIFY_FN COPY_DIR -- CHANGE...
# BASE plus the wheels REQUIREMENTS pins and COPY_DIR in site-packages, installed in a
# container with no network, exported as a rootfs and imported flat.
wheel_image() {
  local image=$1 base=$2 req=$3 verify=$4 copy=$5 changes=() recipe tarball prefix
  shift 5
  [[ ${1:-} == -- ]] && shift
  changes=("$@")
  local base_recipe
  base_recipe=$(image_recipe "$base")
  [[ -n $base_recipe ]] || die "$image needs $base, which is missing"
  recipe=$({
    printf 'image=%s\nbase=%s@%s\n' "$image" "$base" "$base_recipe"
    cat "$req"
    printf 'change=%s\n' "${changes[@]}"
    [[ -z $copy ]] || printf 'copy=%s\n' "$(tree_digest "$copy")"
    declare -f "$verify"
  } | recipe_hash)
  if up_to_date "$image" "$recipe"; then
    log "$image up to date (recipe ${recipe:0:12}), nothing to do"
    return 0
  fi
  local start=$SECONDS
  prefix=$(slug "$image")
  tarball=$CACHE_DIR/$prefix-$recipe.tar.gz
  if (( FORCE )) || ! cached_tarball "$tarball"; then
    local wheels name="gantry-image-install-$$" t0
    wheels=$(fetch_wheels "$req")
    CLEAN_CONTAINERS+=("$name")
    # Mounted under /tmp: the empty mount points stay in the export, where a workload's
    # /tmp (a tmpfs when hardened) hides them.
    local mounts=(-v "$wheels:/tmp/gantry-wheels:ro")
    [[ -z $copy ]] || mounts+=(-v "$copy:/tmp/gantry-src/$(basename "$copy"):ro")
    log "installing $(grep -c '==' "$req") wheels into $base (offline)…"
    t0=$SECONDS
    # pip's byte-compiling is kept: a read-only root filesystem cannot cache .pyc later.
    if ! docker run --name "$name" --network none "${mounts[@]}" "$base" sh -euc "
          pip install --quiet --no-index --find-links /tmp/gantry-wheels \
            -r /tmp/gantry-wheels/requirements.txt
          if [ -d /tmp/gantry-src ]; then
            cp -r /tmp/gantry-src/. $SITE_PACKAGES/
            python3 -m compileall -q $SITE_PACKAGES/$(basename "${copy:-none}")
            chmod -R a+rX $SITE_PACKAGES
          fi
          rm -rf /root/.cache /var/tmp/*" >&2; then
      die "installing wheels into $base failed"
    fi
    log "installed in $(( SECONDS - t0 )) s; exporting…"
    docker export "$name" | store_tarball "$tarball" "$prefix"
    docker rm "$name" >/dev/null
  fi
  import_image "$image" "$recipe" "$tarball" "$verify" "${changes[@]}"
  log "$image ready ($(image_mb "$image") MB, recipe ${recipe:0:12}) in $(( SECONDS - start )) s"
}
