#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: protoc (to
# check the committed generated code is current), SoftHSM2 (the PKCS#11
# tests), and iproute2 + iptables (the multi-process chaos harness makes its
# own network namespace and partitions it with iptables). Runs apt-get only when something is missing, so it is cheap to
# call before every test run.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)

if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
