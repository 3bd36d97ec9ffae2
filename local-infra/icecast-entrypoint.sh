#!/bin/sh
# Container start for Dockerfile.icecast: render the shared icecast.xml.template (the
# same file native.mjs renders) from the environment, start the station fill's source,
# then run Icecast in the foreground.
# ICECAST_TEMPLATE / ICECAST_CONFIG move the files (the tests run this script outside Docker).
set -eu
: "${ICECAST_SOURCE_PASSWORD:?ICECAST_SOURCE_PASSWORD is not set}"
: "${ICECAST_ADMIN_PASSWORD:?ICECAST_ADMIN_PASSWORD is not set}"
: "${ICECAST_PORT:=8000}"
: "${ICECAST_BIND_ADDRESS:=0.0.0.0}"
here=$(dirname -- "$0")
template="${ICECAST_TEMPLATE:-/etc/icecast2/icecast.xml.template}"
config="${ICECAST_CONFIG:-/var/lib/openstudio-icecast/icecast.xml}"
# Icecast's own directory: the config, its pid file and the show-fallback hook, which
# rewrites the config and has Icecast re-read it (as the icecast2 user).
ICECAST_STATE_DIR=$(dirname -- "$config")
export ICECAST_PORT ICECAST_BIND_ADDRESS ICECAST_STATE_DIR
mkdir -p "$ICECAST_STATE_DIR"
cp "$here/icecast-show-fallback.sh" "$here/icecast-show-gone.sh" "$ICECAST_STATE_DIR/"
# How long listeners wait on a show's fill before it counts as ended (else 120 s).
if [ -n "${ICECAST_FILL_SECONDS:-}" ]; then echo "$ICECAST_FILL_SECONDS" >"$ICECAST_STATE_DIR/fill-seconds"; fi
# Only these names are substituted; anything else in the file stays as written.
(umask 077 && envsubst '${ICECAST_SOURCE_PASSWORD} ${ICECAST_ADMIN_PASSWORD} ${ICECAST_PORT} ${ICECAST_BIND_ADDRESS} ${ICECAST_STATE_DIR}' \
  < "$template" > "$config")
if [ "$(id -u)" = 0 ]; then
  chown icecast2:icecast "$ICECAST_STATE_DIR" "$config" "$ICECAST_STATE_DIR/icecast-show-fallback.sh" \
    "$ICECAST_STATE_DIR/icecast-show-gone.sh"
fi
# The station fill's source; it ends when Icecast (this process, after exec) does.
sh "$here/icecast-station-fill.sh" "$$" "$ICECAST_STATE_DIR" &
# Started as root, Icecast reads the config, then drops to the icecast2 user (<changeowner>).
exec icecast2 -c "$config"
