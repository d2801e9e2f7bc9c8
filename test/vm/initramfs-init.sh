#!/bin/busybox sh
# Stage 1 of the test VM, run by the kernel from the initramfs (busybox only).
# Loads the modules the root file system needs, mounts the host's root read-only
# over 9p with a tmpfs overlay on top, and hands over to test/vm/init.sh there.
# The kernel passes BPFREDIR_REPO, BPFREDIR_VM_MODULES and CI from its command line as environment.
set -eu
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t devtmpfs dev /dev
# In dependency order, as run-kernel.sh listed them.
for m in $(cat /modules.load); do insmod "$m"; done

mkdir -p /lower /rw /newroot
# cache=loose: the host root does not change while the suite runs, so the guest may cache it.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /lower
mount -t tmpfs -o size=50% rw /rw
mkdir -p /rw/upper /rw/work
# index/xino/redirect_dir off: a 9p lower layer has no stable file handles for them.
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,index=off,xino=off,redirect_dir=off,metacopy=off \
  root /newroot

umount /proc
umount /dev
exec switch_root /newroot /bin/bash "$BPFREDIR_REPO/test/vm/init.sh" "$@"
