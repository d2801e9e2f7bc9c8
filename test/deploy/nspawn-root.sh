#!/usr/bin/env bash
# A Debian root with systemd for booting under systemd-nspawn (test/deploy/systemd.test.ts):
# debootstrap --variant=minbase from the apt mirror (~45 s), once; cached under build/deploy/.
# The libraries bpfredir's addon and Node link are included; Node itself, the installed
# bpfredir and the unit are bind-mounted by the test, so the root never goes stale.
#   test/deploy/nspawn-root.sh        # prints the root's path
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD/build/deploy/nspawn-root
log() { echo "nspawn-root: $*" >&2; }

if [ ! -f "$root/.complete" ]; then
  if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
    log "installing debootstrap and systemd-container"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap systemd-container >/dev/null
  fi
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  log "debootstrap $suite from $mirror into $root"
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,libbpf1,libelf1,zlib1g,libstdc++6 \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  # The unit under test is bind-mounted over this file at boot; enabled like `systemctl enable`.
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/bpfredir"
  touch "$root/etc/systemd/system/bpfredir.service"
  ln -sf /etc/systemd/system/bpfredir.service "$root/etc/systemd/system/multi-user.target.wants/bpfredir.service"
  touch "$root/.complete"
fi
echo "$root"
