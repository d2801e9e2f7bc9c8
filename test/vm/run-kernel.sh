#!/usr/bin/env bash
# Runs the kernel integration suite (or the command given) on another kernel: Debian's
# packaged Linux 6.1, booted under QEMU with the host's root file system shared read-only
# over 9p and a tmpfs overlay on top, so the guest uses the host's node, tools and this
# repo's built dist/ at the same paths. Exits with the guest command's exit code.
#
#   test/vm/run-kernel.sh                         # the kernel suite, as `make test-kernel`
#   test/vm/run-kernel.sh node --test dist/test/kernel/native.test.js
#
# Arguments are passed on the kernel command line: plain words only (no spaces, no quotes).
# Environment:
#   BPFREDIR_VM_KERNEL   apt package of the kernel (default: newest linux-image-6.1.0-N-amd64)
#   BPFREDIR_VM_TIMEOUT  seconds before QEMU is killed (default 3600)
#   BPFREDIR_VM_ACCEL    tcg (default) or kvm
#   BPFREDIR_VM_CPUS, BPFREDIR_VM_MEMORY  (default 2 and 4G)
#   BPFREDIR_VM_SLOWDOWN  how much the tests stretch their clocks (default 10 under tcg, 1 under kvm)
# Needs root (apt, and the guest shares / as root). Packages and kernels are cached in build/vm/.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
cache=$repo/build/vm
timeout_s=${BPFREDIR_VM_TIMEOUT:-3600}
accel=${BPFREDIR_VM_ACCEL:-tcg}
log() { echo "run-kernel: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "needs root (installs packages; the guest mounts the host root as root)"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# QEMU is installed; busybox and the kernel are only unpacked into build/vm, never installed.
if ! dpkg-query -W -f='${Status}' qemu-system-x86 2>/dev/null | grep -q 'install ok installed'; then
  log "installing qemu-system-x86"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

# Downloads a package's .deb and unpacks it into $cache/PKG/root, once.
unpack() {
  local pkg=$1 dir=$cache/$1
  [ -f "$dir/.unpacked" ] && return 0
  rm -rf "$dir"
  mkdir -p "$dir"
  log "downloading $pkg"
  # A stale package list may name a version the mirror no longer has: refresh and retry once.
  (cd "$dir" && { apt-get download -qq -o APT::Sandbox::User=root "$pkg" 2>/dev/null ||
    { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root "$pkg"; }; })
  dpkg-deb -x "$dir"/*.deb "$dir/root"
  rm -f "$dir"/*.deb
  touch "$dir/.unpacked"
}

kernel_pkg=${BPFREDIR_VM_KERNEL:-}
if [ -z "$kernel_pkg" ]; then
  newest_61() { apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -1; }
  kernel_pkg=$(newest_61)
  [ -n "$kernel_pkg" ] || { apt-get update -qq; kernel_pkg=$(newest_61); }
  [ -n "$kernel_pkg" ] || { log "apt knows no linux-image-6.1.0-N-amd64 package"; exit 1; }
fi
unpack busybox-static
unpack "$kernel_pkg"
busybox=$cache/busybox-static/root/bin/busybox
kroot=$cache/$kernel_pkg/root
kver=$(ls "$kroot/lib/modules")
moddir=$kroot/lib/modules/$kver
# The package ships no modules.dep (its postinst makes one); the guest's modprobe needs it.
# Newer packages compress their modules, which busybox's insmod cannot load: unpack them first.
if [ ! -f "$moddir/modules.dep" ]; then
  find "$moddir" -name '*.ko.xz' -exec "$busybox" unxz {} +
  "$busybox" depmod -b "$kroot" "$kver"
fi

run=$(mktemp -d "$cache/run.XXXXXX")
qemu_pid=
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The initramfs: busybox, stage 1 and the modules needed to mount the root, in load order.
initrd=$run/initrd
mkdir -p "$initrd/bin" "$initrd/modules" "$initrd/proc" "$initrd/dev"
cp "$busybox" "$initrd/bin/busybox"
cp test/vm/initramfs-init.sh "$initrd/init"
chmod 755 "$initrd/init"
# Modules built into the kernel (modules.builtin, read first) need no loading.
awk -v want="virtio_pci 9pnet_virtio 9p overlay" '
  FNR == NR { name = $1; sub(/.*\//, "", name); sub(/\.ko$/, "", name); builtin[name] = 1; next }
  { key = $1; sub(/:$/, "", key); deps[key] = ""; for (i = 2; i <= NF; i++) deps[key] = deps[key] " " $i
    name = key; sub(/.*\//, "", name); sub(/\.ko.*$/, "", name); path[name] = key }
  function visit(p,   n, a, i) {
    if (p in seen) return
    seen[p] = 1
    n = split(deps[p], a, " ")
    for (i = 1; i <= n; i++) visit(a[i])
    print p
  }
  END {
    n = split(want, w, " ")
    for (i = 1; i <= n; i++) {
      if (w[i] in builtin) continue
      if (!(w[i] in path)) { print "no module " w[i] > "/dev/stderr"; exit 1 }
      visit(path[w[i]])
    }
  }' "$moddir/modules.builtin" "$moddir/modules.dep" >"$run/modules"
while read -r ko; do
  cp "$moddir/$ko" "$initrd/modules/"
  echo "/modules/$(basename "$ko")"
done <"$run/modules" >"$initrd/modules.load"
(cd "$initrd" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$run/initrd.gz"

# Under TCG the guest runs 10–30x slower: tests stretch their clocks and shrink bulk transfers.
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) slowdown=1 ;;
  *) accel_args=(-accel tcg -cpu max) slowdown=10 ;;
esac
# Unknown words on the command line would become init's arguments, so only known ones go
# before "--"; the variables reach init's environment.
append="console=ttyS0 quiet panic=-1 CI=true BPFREDIR_REPO=$repo BPFREDIR_VM_MODULES=$moddir"
append+=" BPFREDIR_VM_BUSYBOX=$busybox"
append+=" BPFREDIR_TEST_SLOWDOWN=${BPFREDIR_VM_SLOWDOWN:-$slowdown} -- $*"
out=$cache/$kver.log
log "booting $kver ($accel, ${BPFREDIR_VM_CPUS:-2} CPUs, ${BPFREDIR_VM_MEMORY:-4G}); console log: ${out#"$repo"/}"
start=$(date +%s)
# No network device: the guest's traffic stays in its own loopback and namespaces.
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${accel_args[@]}" \
  -smp "${BPFREDIR_VM_CPUS:-2}" -m "${BPFREDIR_VM_MEMORY:-4G}" \
  -nodefaults -no-reboot -display none -nic none \
  -chardev "stdio,id=console,signal=off,logfile=$out" -serial chardev:console \
  -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$run/initrd.gz" -append "$append" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -device virtio-rng-pci </dev/null &
qemu_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
elapsed=$(($(date +%s) - start))

rc=$(tr -d '\r' <"$out" | sed -n 's/^bpfredir-vm: exit=\([0-9]*\)$/\1/p' | tail -1)
if [ -z "$rc" ]; then
  [ "$qemu_rc" = 124 ] && log "timed out after ${timeout_s} s" || log "the guest reported no exit code (QEMU exit $qemu_rc)"
  exit 1
fi
log "$kver: exit $rc after ${elapsed} s"
exit "$rc"
