#!/bin/sh
# Keeps the station fill on the air: station-fill.ogg, looped at its own pace, is the source
# of /station-fill.ogg, which each show's fill relay plays while the show's source is gone
# (icecast-show-fallback.sh). A paced source, because Icecast 2.4 sends a fallback *file*
# to a listener as fast as it reads (about 75 kB/s here, 24 times this file's pace): a
# player would buffer minutes of fill and then stay that far behind the show.
#
#   icecast-station-fill.sh ICECAST_PID STATE_DIR
#
# Environment: ICECAST_PORT, ICECAST_SOURCE_PASSWORD; STATION_FILL (an Ogg/Opus file) and
# STATION_FILL_RATE (its bytes per second) to use another fill. Runs until the Icecast
# process ICECAST_PID ends; reconnects while it runs (Icecast not up yet, or restarting).
set -eu
icecast_pid="$1"
dir="$2"
: "${ICECAST_PORT:?}" "${ICECAST_SOURCE_PASSWORD:?}"
fill="${STATION_FILL:-$(dirname -- "$0")/station-fill.ogg}"
# station-fill.ogg: 30979 bytes, 10.0 s (constant bit rate).
rate="${STATION_FILL_RATE:-3096}"

umask 077
# curl reads the password from a file: it stays out of the process list.
printf 'user = "source:%s"\n' "$ICECAST_SOURCE_PASSWORD" >"$dir/station-fill.curl"
size=$(wc -c <"$fill")
while kill -0 "$icecast_pid" 2>/dev/null; do
  # One second of the file each second (curl's own --limit-rate sends its 64 kB buffer at
  # once, then nothing for longer than Icecast's source-timeout). The pacing loop ends when
  # curl does: dd then fails on the closed pipe.
  # Icecast 2.4 reads a source's body as is: no chunked encoding (nor Expect: 100-continue).
  status=$(
    offset=0
    while :; do
      dd if="$fill" bs="$rate" skip="$offset" count=1 2>/dev/null || exit 0
      offset=$(((offset + 1) % ((size + rate - 1) / rate)))
      sleep 1
    done | curl -s -o /dev/null -w '%{http_code}' -K "$dir/station-fill.curl" -T - \
      -H 'Content-Type: application/ogg' -H 'Transfer-Encoding:' -H 'Expect:' \
      "http://127.0.0.1:$ICECAST_PORT/station-fill.ogg"
  ) || true
  # Quiet while Icecast starts or stops (its logs are checked for trouble); a refusal is told.
  if kill -0 "$icecast_pid" 2>/dev/null && [ "$status" != 000 ]; then
    echo "station fill: Icecast answered HTTP $status on /station-fill.ogg; again in 1 s" >&2
  fi
  sleep 1
done
