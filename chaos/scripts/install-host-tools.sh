#!/usr/bin/env bash
# Installs what the nemesis suite (chaos/tests/nemesis.rs, `gantry-chaos soak`) needs
# on the host, from Debian's packages:
#   iproute2     `ip netns` / veth / bridge: one network namespace per replica and agent
#   iptables     partitions and one-way drops inside those namespaces
#   libfaketime  wall-clock jumps of a running replica (LD_PRELOAD)
#   e2fsprogs    mkfs.ext4 for the small loop-mounted disks that fill up
# Idempotent and non-interactive, for CI and developers; needs root or sudo (the suite
# itself needs root too: namespaces, iptables and loop mounts).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(libfaketime)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-host-tools: installing ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "install-host-tools: ip, iptables, mkfs.ext4 and libfaketime present"
