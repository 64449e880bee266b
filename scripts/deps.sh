#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, checking each
# need by the file or command the suite uses rather than by package name:
#   make, git                  the Makefile; gofmt/vet and the generated-code
#                              check list and diff files with git
#   ca-certificates            module downloads from the Go module proxy
#   gcc, libc6-dev             cgo: the PKCS#11 backend and the race detector
#   protobuf-compiler          protoc, for the generated-code check
#   libprotobuf-dev            the well-known types (google/protobuf/*.proto)
#                              that our .proto files import; protoc alone
#                              only recommends them
#   softhsm2                   the PKCS#11 tests run on real SoftHSM2 tokens
#   iproute2, iptables         the multi-process chaos harness makes its own
#                              network namespace and partitions it
# Go itself is not installed here (Debian's is older than go.mod asks for).
# apt-get runs only when something is missing, so this is cheap to call
# before every test run; scripts/fresh-machine-check.sh proves the list is
# complete on a clean Debian root filesystem.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd make || need+=(make)
have_cmd git || need+=(git)
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || need+=(ca-certificates)
have_cmd gcc || need+=(gcc)
[[ -e /usr/include/stdlib.h ]] || need+=(libc6-dev)
have_cmd protoc || need+=(protobuf-compiler)
[[ -e /usr/include/google/protobuf/duration.proto ]] || need+=(libprotobuf-dev)
have_cmd softhsm2-util || need+=(softhsm2)
have_cmd ip || need+=(iproute2)
have_cmd iptables || need+=(iptables)

if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
