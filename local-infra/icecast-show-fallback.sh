#!/bin/sh
# Icecast <on-connect> hook of the show mounts (/show-*.ogg): gives each show its own fill,
# so its listeners stay connected while its source is gone (a Worker restart) and come back
# to it, and only to it, when the source returns.
#
# The first time a show connects, its own <mount> block is added to icecast.xml (the
# settings of the /show-*.ogg block plus fallback-mount and fallback-override) together
# with an on-demand <relay> of the station fill to a fill mount of its own,
# /fill-<random>.ogg: a name that says nothing about the show, hidden like the shows. Then
# Icecast re-reads its config (SIGHUP), which keeps sources and listeners. A fill mount
# shared by several shows would not do: Icecast 2.4 moves every listener of a fallback
# mount to the first show whose source returns.
#
# When a show's source goes (icecast-show-gone.sh, the <on-disconnect> hook, runs this with
# `gone` first): if the show is not back on the air within the fill's time (fill-seconds in
# this directory, else 120 s) it has ended rather than paused, and its fill is stopped, which
# drops the listeners waiting on it, as Icecast does without a fill (a player then stops
# instead of playing the fill for ever).
#
# Icecast runs this with an empty environment and the mount as the only argument; the
# config (icecast.xml), Icecast's pid file (icecast.pid) and the list of shows (shows/)
# are in the directory this script is in. Shows are kept in the order of their last
# connection; beyond SHOWS_KEPT the oldest lose their blocks (and their fill).
set -eu
PATH=/usr/local/bin:/usr/bin:/bin
SHOWS_KEPT=64
STATION_FILL_MOUNT=/station-fill.ogg

event=connected
if [ "${1:-}" = gone ]; then event=gone; shift; fi
mount="${1:-}"
case "$mount" in
  /show-*.ogg) ;;
  *) exit 0 ;;
esac
# The name goes into XML and a file name: nothing but what the Worker's names contain.
case "${mount#/}" in
  *[!A-Za-z0-9._-]*) exit 0 ;;
esac

dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
config="$dir/icecast.xml"
shows="$dir/shows"
umask 077

if [ "$event" = gone ]; then
  fill=$(cat "$shows/${mount#/}" 2>/dev/null) || exit 0
  seconds=$(cat "$dir/fill-seconds" 2>/dev/null || echo 120)
  # This gap's mark: a later gap of the same show (back, then gone again) takes over.
  mkdir -p "$dir/gaps"
  mark="$$.$(date +%s)"
  printf '%s\n' "$mark" >"$dir/gaps/${mount#/}"
  sleep "$seconds"
  [ "$(cat "$dir/gaps/${mount#/}" 2>/dev/null)" = "$mark" ] || exit 0
  rm -f "$dir/gaps/${mount#/}"

  value() { sed -n "s:.*<$1>\\([^<]*\\)</$1>.*:\\1:p" "$config" | head -n 1; }
  # Admin requests, the password on curl's standard input (not in the process list).
  admin() {
    printf 'user = "%s:%s"\n' "$(value admin-user)" "$(value admin-password)" |
      curl -s -K - "http://127.0.0.1:$(value port)/admin/$1"
  }
  mounts=$(admin listmounts) || exit 0
  case "$mounts" in
    *"mount=\"$mount\""*) exit 0 ;;  # back on the air
  esac
  admin "killsource?mount=$fill" >/dev/null || true
  exit 0
fi

mkdir -p "$shows"

# Two shows may connect at once: one rewrite at a time.
exec 9>"$dir/show-fallback.lock"
flock 9

show="$shows/${mount#/}"
if [ -f "$show" ]; then
  touch "$show"
  exit 0
fi
printf '%s\n' "/fill-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n').ogg" >"$show"
ls -t "$shows" | tail -n +$((SHOWS_KEPT + 1)) | while read -r old; do rm -f "$shows/$old"; done

port=$(sed -n 's:.*<port>\([0-9]*\)</port>.*:\1:p' "$config" | head -n 1)
# The settings lines of the /show-*.ogg block, repeated in each show's own block.
settings=$(awk '
  index($0, "<mount-name>/show-*.ogg</mount-name>") { inside = 1; next }
  inside && index($0, "</mount>") { exit }
  inside { print }
' "$config")

blocks="$dir/show-fallback.blocks"
# One file per show in shows/ (named by its mount, holding its fill mount): one block each.
SETTINGS="$settings" awk -v port="$port" -v station="$STATION_FILL_MOUNT" '
  FNR == 1 {
    show = FILENAME; sub(/.*\//, "", show); fill = $0
    print "  <mount type=\"normal\">"
    print "    <mount-name>/" show "</mount-name>"
    print "    <fallback-mount>" fill "</fallback-mount>"
    print "    <fallback-override>1</fallback-override>"
    print ENVIRON["SETTINGS"]
    print "  </mount>"
    print "  <mount type=\"normal\">"
    print "    <mount-name>" fill "</mount-name>"
    print "  </mount>"
    print "  <relay>"
    print "    <server>127.0.0.1</server>"
    print "    <port>" port "</port>"
    print "    <mount>" station "</mount>"
    print "    <local-mount>" fill "</local-mount>"
    print "    <on-demand>1</on-demand>"
    print "    <relay-shoutcast-metadata>0</relay-shoutcast-metadata>"
    print "  </relay>"
  }
' "$shows"/* >"$blocks"

# Replace what is between the two markers of the config, then swap the file in whole.
awk -v blocks="$blocks" '
  index($0, "<!-- show fallbacks: end -->") { skip = 0 }
  !skip { print }
  index($0, "<!-- show fallbacks: begin -->") { while ((getline line < blocks) > 0) print line; skip = 1 }
' "$config" >"$config.new"
mv "$config.new" "$config"
kill -HUP "$(cat "$dir/icecast.pid")"
