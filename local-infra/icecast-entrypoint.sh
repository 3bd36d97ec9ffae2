#!/bin/sh
# Container start for Dockerfile.icecast: render the shared icecast.xml.template (the
# same file native.mjs renders) from the environment, then run Icecast in the foreground.
# ICECAST_TEMPLATE / ICECAST_CONFIG move the files (the tests run this script outside Docker).
set -eu
: "${ICECAST_SOURCE_PASSWORD:?ICECAST_SOURCE_PASSWORD is not set}"
: "${ICECAST_ADMIN_PASSWORD:?ICECAST_ADMIN_PASSWORD is not set}"
: "${ICECAST_PORT:=8000}"
: "${ICECAST_BIND_ADDRESS:=0.0.0.0}"
export ICECAST_PORT ICECAST_BIND_ADDRESS
template="${ICECAST_TEMPLATE:-/etc/icecast2/icecast.xml.template}"
config="${ICECAST_CONFIG:-/etc/icecast2/icecast.xml}"
# Only these names are substituted; anything else in the file stays as written.
(umask 077 && envsubst '${ICECAST_SOURCE_PASSWORD} ${ICECAST_ADMIN_PASSWORD} ${ICECAST_PORT} ${ICECAST_BIND_ADDRESS}' \
  < "$template" > "$config")
# Started as root, Icecast reads the config, then drops to the icecast2 user (<changeowner>).
exec icecast2 -c "$config"
