#!/usr/bin/env bash
# DEV ONLY: a look at the UI in the real app (WebKitGTK, real IPC, real node).
# Runs the debug app binary (which loads the dev server) under Xvfb inside a
# private network namespace with a headless festival-node "Ben" beside it on
# loopback, drives it with xdotool (send in the festival room, people panel,
# a sealed DM, my code, settings) and saves screenshots to artifacts/app-ui/.
# The release build and CI screenshots are scripts/screenshot.
#   APP=target/app/debug/festival-chat NODE=target/debug/festival-node ui/dev/real-app.sh
# Needs root (namespace), xvfb, xauth, imagemagick, xdotool.
set -euo pipefail
cd "$(dirname "$0")/../.."
app=$(realpath "${APP:-target/app/debug/festival-chat}")
node=$(realpath "${NODE:-target/debug/festival-node}")
out=$(realpath -m artifacts/app-ui)
mkdir -p "$out"
exec unshare --net bash -s "$app" "$node" "$out" "$PWD/ui" <<'INNER'
set -euo pipefail
app=$1 node=$2 out=$3 ui=$4
ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
(cd "$ui" && exec npx vite --host 127.0.0.1 --port 1420 --strictPort >"$work/vite.log" 2>&1) &
"$node" --data-dir "$work/ana" init --name Ana >/dev/null
"$node" --data-dir "$work/ana" send --room festival "Anyone near the Main Stage?" >/dev/null
mkfifo "$work/ben.in"
"$node" --data-dir "$work/ben" run --name Ben --power mains --json <"$work/ben.in" >"$work/ben.log" 2>&1 &
exec 7>"$work/ben.in"
for _ in $(seq 60); do grep -q "ready in" "$work/vite.log" 2>/dev/null && break; sleep 0.5; done
export FESTIVAL_DATA_DIR="$work/ana" FESTIVAL_POWER=battery:42 WEBKIT_DISABLE_COMPOSITING_MODE=1
xvfb-run -a -s "-screen 0 1280x820x24" bash -c '
  app=$1 out=$2 work=$3
  "$app" >"$work/app.log" 2>&1 &
  pid=$!
  sleep 12
  import -window root "$out/01-start.png"
  deadline=$((SECONDS + 40))
  until grep -q "\"link_up\"" "$work/ben.log" || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
  echo "Hi Ana! At the left speaker stack" >&7
  sleep 6
  import -window root "$out/02-reply.png"
  # Window 1120x760 centred on 1280x820: composer ~(780,720), people ~(225,702).
  xdotool mousemove 780 720 click 1; sleep 0.5
  xdotool type --delay 30 "On my way with water"; xdotool key Return
  sleep 6
  import -window root "$out/03-sent.png"
  xdotool mousemove 225 702 click 1; sleep 2
  import -window root "$out/04-people.png"
  xdotool mousemove 1163 235 click 1; sleep 2
  xdotool type --delay 30 "Sealed hello, Ben"; xdotool key Return
  sleep 8
  import -window root "$out/05-dm.png"
  xdotool mousemove 294 66 click 1; sleep 2
  import -window root "$out/06-my-code.png"
  xdotool key Escape; sleep 0.5
  xdotool mousemove 340 66 click 1; sleep 1.5
  import -window root "$out/07-settings.png"
  kill $pid
  cp "$work/app.log" "$work/ben.log" "$out/"
' _ "$app" "$out" "$work" 7>&7
INNER
