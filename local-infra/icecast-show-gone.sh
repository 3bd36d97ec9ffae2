#!/bin/sh
# Icecast <on-disconnect> hook of the show mounts: a show's source is gone. Icecast passes
# nothing but the mount; icecast-show-fallback.sh, beside this, does the work.
exec "$(dirname -- "$0")/icecast-show-fallback.sh" gone "$@"
