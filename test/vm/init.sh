#!/bin/bash
# Stage 2 of the test VM: PID 1 on the overlay root (the host's files, writable in memory).
# Mounts what the kernel tests use, runs the command given (default: the kernel suite) in the
# repo, prints its exit code on the console for run-kernel.sh, and powers the VM off.
# Environment from the kernel command line: BPFREDIR_REPO, BPFREDIR_VM_MODULES,
# BPFREDIR_VM_BUSYBOX, CI.
rc=125 # what the host sees when the set-up below fails

finish() {
  echo "bpfredir-vm: exit=$rc"
  sync
  # Power off at once; if that fails, PID 1 exits, the kernel panics and QEMU (-no-reboot) stops.
  echo o >/proc/sysrq-trigger 2>/dev/null
  sleep 30
}
trap finish EXIT
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
# /var/run is /run on Debian; `ip netns add` bind-mounts namespaces under /run/netns, and
# those mounts must propagate, so the whole tree is shared.
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/netns
mount --make-rshared /

# The host root has no modules for this kernel: borrow the unpacked package's, and let the
# kernel load them on demand (veth, ...) with busybox's modprobe.
kver=$(uname -r)
mkdir -p "/usr/lib/modules/$kver"
mount --bind "$BPFREDIR_VM_MODULES" "/usr/lib/modules/$kver"
ln -sf "$BPFREDIR_VM_BUSYBOX" /usr/sbin/modprobe
echo /usr/sbin/modprobe >/proc/sys/kernel/modprobe
modprobe virtio_rng # entropy for node's crypto without waiting
modprobe veth

hostname bpfredir-vm
ip link set lo up

cd "$BPFREDIR_REPO"
[ $# -gt 0 ] || set -- node --test --test-concurrency=1 --test-reporter=spec dist/test/kernel/
echo "bpfredir-vm: kernel $kver, $(nproc) CPUs, running: $*"
start=$(date +%s)
set +e
"$@"
rc=$?
echo "bpfredir-vm: finished in $(($(date +%s) - start)) s"
