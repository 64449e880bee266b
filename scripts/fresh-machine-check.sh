#!/usr/bin/env bash
# Proves that CI's entry point passes on a machine with nothing installed:
# a clean clone of the committed HEAD runs `bash .ci/run` inside a container
# made from a bare Debian root filesystem (debootstrap --variant=minbase),
# with only the Go toolchain of this machine mounted in. Whatever the suite
# needs beyond Go must come from scripts/deps.sh, exactly as on a newcomer's
# machine or a fresh CI runner. Rerun it whenever deps.sh, .ci/run or the
# Makefile change.
#
#   sudo scripts/fresh-machine-check.sh            # build (once) and run
#   FRESH_CACHE=/var/cache/meridian-fresh ...      # where the rootfs is kept
#   FRESH_REBUILD=1 ...                            # debootstrap anew
#
# Needs root, debootstrap and Docker (no image is pulled: the image is
# imported from the root filesystem debootstrap builds). The container gets
# NET_ADMIN, SYS_ADMIN and SYS_PTRACE without seccomp/AppArmor filtering
# (the chaos harness makes network namespaces and iptables rules inside it,
# and its tests read the namespaces of nodes running under other uids, as
# root can on a machine; a fully
# --privileged container cannot start in every sandbox) and uses the host's network only to reach Debian's packages
# and the Go module proxy; its Go module and build caches start empty.
set -euo pipefail

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
cache=${FRESH_CACHE:-/var/cache/meridian-fresh}
suite=${FRESH_SUITE:-bookworm}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
image=meridian-fresh:$suite
goroot=$(go env GOROOT)

if [[ $(id -u) -ne 0 ]]; then
	echo "fresh-machine-check: needs root (debootstrap, docker, a container with NET_ADMIN and SYS_ADMIN)" >&2
	exit 1
fi
command -v docker >/dev/null || { echo "fresh-machine-check: docker not found" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
if [[ -n $(git -C "$repo" status --porcelain) ]]; then
	echo "fresh-machine-check: note: uncommitted changes are not tested (a clone of HEAD is)" >&2
fi

rootfs=$cache/rootfs-$suite
if [[ -n ${FRESH_REBUILD:-} ]]; then
	rm -rf "$rootfs"
	docker image rm -f "$image" >/dev/null 2>&1 || true
fi
if [[ ! -e $rootfs/.complete ]]; then
	rm -rf "$rootfs"
	mkdir -p "$cache"
	echo "fresh-machine-check: debootstrap $suite (minbase) into $rootfs" >&2
	debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ tail -20 "$cache/debootstrap.log" >&2; exit 1; }
	touch "$rootfs/.complete"
	docker image rm -f "$image" >/dev/null 2>&1 || true
fi
if ! docker image inspect "$image" >/dev/null 2>&1; then
	echo "fresh-machine-check: importing $rootfs as $image" >&2
	tar -C "$rootfs" --exclude=./.complete -c . | docker import - "$image" >/dev/null
fi

work=$(mktemp -d /tmp/meridian-fresh.XXXXXX)
name=meridian-fresh-$$
cleanup() {
	docker rm -f "$name" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
git clone -q --no-local "$repo" "$work/src"
# Local CAs belong to the machine's network (a TLS-intercepting egress
# proxy here), not to the project: hand them in, and the ca-certificates
# package that deps.sh installs adds them to the trust store.
cas=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	cas=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
fi
echo "fresh-machine-check: running bash .ci/run on $(git -C "$work/src" rev-parse --short HEAD) in a bare $suite container" >&2
start=$SECONDS
set +e
docker run --name "$name" --rm --network host \
	--cap-add NET_ADMIN --cap-add SYS_ADMIN --cap-add SYS_PTRACE \
	--security-opt seccomp=unconfined --security-opt apparmor=unconfined \
	-v "$goroot:/usr/local/go:ro" -v "$work/src:/src" -w /src \
	"${cas[@]}" \
	-e PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	-e HOME=/root -e CI=true -e GOTOOLCHAIN=local \
	"$image" bash .ci/run
rc=$?
set -e
echo "fresh-machine-check: bash .ci/run exited $rc after $((SECONDS - start)) s in a bare $suite container" >&2
exit $rc
