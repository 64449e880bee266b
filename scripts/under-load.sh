#!/usr/bin/env bash
# Runs a command while CPU hogs keep every core busy, the way a shared CI
# runner or a laptop compiling something else does. The suite must still
# pass: correctness assertions hold under load, timing targets live in
# benchmarks and reports.
#
#   scripts/under-load.sh [-n HOGS] -- command args...
#
# HOGS defaults to twice the number of cores, so the command gets about a
# third of the machine (a load average of 6-8 on 2 cores with the suite's
# own parallelism on top, as seen on loaded CI runners). The hogs are plain
# busy loops at the command's own priority and die with this script.
set -euo pipefail

hogs=$(( $(nproc) * 2 ))
if [[ ${1:-} == -n ]]; then
	hogs=$2
	shift 2
fi
[[ ${1:-} == -- ]] && shift
if (($# == 0)); then
	echo "usage: $0 [-n HOGS] -- command args..." >&2
	exit 2
fi

pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for ((i = 0; i < hogs; i++)); do
	# sha256sum of an endless stream: pure CPU, no memory, no disk.
	sha256sum /dev/zero >/dev/null &
	pids+=($!)
done
echo "under-load: $hogs CPU hogs on $(nproc) cores while running: $*" >&2
start=$SECONDS
set +e
"$@"
rc=$?
set -e
echo "under-load: exit $rc after $((SECONDS - start)) s (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
exit $rc
