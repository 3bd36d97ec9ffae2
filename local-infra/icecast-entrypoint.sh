#!/bin/sh
# Container start for Dockerfile.icecast: render the shared icecast.xml.template (the
# same file native.mjs renders) from the environment, then run Icecast in the foreground.
set -eu
: "${ICECAST_SOURCE_PASSWORD:?ICECAST_SOURCE_PASSWORD is not set}"
: "${ICECAST_ADMIN_PASSWORD:?ICECAST_ADMIN_PASSWORD is not set}"
: "${ICECAST_PORT:=8000}"
: "${ICECAST_BIND_ADDRESS:=0.0.0.0}"
export ICECAST_PORT ICECAST_BIND_ADDRESS
# Only these names are substituted; anything else in the file stays as written.
envsubst '${ICECAST_SOURCE_PASSWORD} ${ICECAST_ADMIN_PASSWORD} ${ICECAST_PORT} ${ICECAST_BIND_ADDRESS}' \
  < /etc/icecast2/icecast.xml.template > /etc/icecast2/icecast.xml
chmod 600 /etc/icecast2/icecast.xml
# Started as root, Icecast reads the config, then drops to the icecast2 user (<changeowner>).
exec icecast2 -c /etc/icecast2/icecast.xml
