#!/usr/bin/env bash
# Usage: scripts/timed.sh LABEL COMMAND [ARGS...]
# Runs COMMAND, then prints one line with LABEL, PASS/FAIL and the elapsed wall time.
# Exits with COMMAND's exit status.
set -uo pipefail
label="$1"; shift
printf '==> %s: %s\n' "$label" "$*"
start=$(date +%s%N)
"$@"
rc=$?
end=$(date +%s%N)
elapsed=$(awk -v ns="$((end - start))" 'BEGIN { printf "%.1f", ns / 1e9 }')
if [ "$rc" -eq 0 ]; then
  printf '==> %s: PASS in %s s\n' "$label" "$elapsed"
else
  printf '==> %s: FAIL (exit %d) after %s s\n' "$label" "$rc" "$elapsed" >&2
fi
exit "$rc"
