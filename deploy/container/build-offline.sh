#!/usr/bin/env bash
# make image: the runtime image of deploy/container/Containerfile, built without a registry.
# `buildah from scratch`, then the same runtime tree the Containerfile's last stage has: the
# installed bpfredir (make install), Node, and the shared libraries Node and the addon link
# (as ldd resolves them on this machine), env for the entry point's #!, /tmp, a minimal /etc.
#   deploy/container/build-offline.sh [IMAGE]     # default localhost/bpfredir:<version>
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(node -p 'require("./package.json").version')
image=${1:-localhost/bpfredir:$version}
log() { echo "make image: $*" >&2; }

if ! command -v buildah >/dev/null; then
  log "installing buildah"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi

stage=$(mktemp -d)
container=
cleanup() {
  rm -rf "$stage"
  [ -z "$container" ] || buildah rm "$container" >/dev/null 2>&1 || true
}
trap cleanup EXIT

make --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local >/dev/null
node=$(command -v node)
mkdir -p "$stage/usr/bin" "$stage/tmp" "$stage/etc/bpfredir" "$stage/run/bpfredir"
chmod 1777 "$stage/tmp"
chmod 0700 "$stage/run/bpfredir"
cp "$node" "$stage/usr/bin/node"
# The entry point's #!/usr/bin/env node (so `bpfredir status` works in the container too).
cp "$(command -v env)" "$stage/usr/bin/env"
# Every library Node and the addon load, and the dynamic loader, at the paths ldd gives.
for lib in $( { ldd "$node"; ldd "$(command -v env)"; ldd "$stage"/usr/local/lib/bpfredir/native/build/Release/bpfredir.node; } \
              | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
  mkdir -p "$stage$(dirname "$lib")"
  cp -L "$lib" "$stage$lib"
done
[ -e "$stage/lib64" ] || { mkdir -p "$stage/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"; }
printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
printf 'hosts: files dns\n' >"$stage/etc/nsswitch.conf"
cp deploy/example.yaml "$stage/etc/bpfredir/config.yaml"

container=$(buildah from scratch)
buildah copy --quiet "$container" "$stage" / >/dev/null
buildah config \
  --entrypoint '["/usr/local/bin/bpfredir"]' \
  --cmd '["run", "--config", "/etc/bpfredir/config.yaml"]' \
  --env NODE_ENV=production \
  --label org.opencontainers.image.title=bpfredir \
  --label "org.opencontainers.image.version=$version" \
  --label org.opencontainers.image.description="eBPF TCP redirector (sk_lookup steering, sockmap splice)" \
  --stop-signal SIGTERM \
  "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
container=
log "built $image ($(buildah images --format '{{.Size}}' "$image"))"
