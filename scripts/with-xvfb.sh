#!/usr/bin/env bash
# Usage: scripts/with-xvfb.sh COMMAND [ARGS...]
# Runs COMMAND with an X display, which WebKitGTK's MiniBrowser needs even under automation: as is
# when $DISPLAY is set, else under a private Xvfb server that lives as long as COMMAND
# (xvfb-run -a picks a free display number, so parallel runs do not collide).
set -euo pipefail
if [ -n "${DISPLAY:-}" ]; then
  exec "$@"
fi
command -v xvfb-run >/dev/null 2>&1 || { echo "with-xvfb: xvfb-run not found (make bootstrap installs xvfb)" >&2; exit 1; }
exec xvfb-run -a -s "-screen 0 1280x1024x24 -nolisten tcp" "$@"
