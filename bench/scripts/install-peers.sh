#!/usr/bin/env bash
# Installs what the benchmarks need at run time from Debian's packages:
#   etcd-server  the `etcd` binary Gantry is compared with.
#   strace       `raft` counts every member's fsync calls before it measures.
#   nginx        `gateway` compares the Gantry gateway with nginx as a proxy
#                (run as the benchmark's own child process; its service stays off).
# Building needs nothing from here: gantry-bench talks to etcd through its
# own client generated with protox (bench/proto/etcd.proto), so no protoc.
# Idempotent and non-interactive, for CI and developers; needs root or sudo.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

if ! command -v etcd >/dev/null 2>&1 || ! command -v strace >/dev/null 2>&1 \
    || { ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; }; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    # etcd-server's own service must not start: the benchmarks run their own
    # members on free ports, and a stray etcd would take CPU from them.
    # policy-rc.d exiting 101 tells invoke-rc.d not to start services.
    created_policy=""
    remove_policy() {
        if [ -n "$created_policy" ]; then
            $SUDO rm -f /usr/sbin/policy-rc.d
        fi
    }
    trap remove_policy EXIT
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends etcd-server strace nginx
fi

echo "install-peers: $(etcd --version | head -n1), $(strace -V | head -n1), $(/usr/sbin/nginx -v 2>&1)"
