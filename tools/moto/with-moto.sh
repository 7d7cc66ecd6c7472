#!/usr/bin/env bash
# with-moto.sh CMD [ARGS...]: runs CMD with moto's DynamoDB-compatible server (python3 -m
# moto.server) on a free 127.0.0.1 port and WXSESSION_TEST_DYNAMODB_ENDPOINT pointing at it,
# then stops the server. `make test-moto` runs the store and end-to-end suites this way.
#
# moto and its server dependencies (flask, flask-cors, werkzeug) come with this machine
# image's python3; elsewhere: Debian's python3-moto python3-flask python3-flask-cors (this
# script installs them with apt-get when it runs as root and finds none).
set -euo pipefail

have_moto() { "$1" -c 'import moto.server, flask, flask_cors, werkzeug' >/dev/null 2>&1; }
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && have_moto "$cand"; then py=$cand; break; fi
done
if [ -z "$py" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "with-moto: installing moto's server (Debian packages)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    python3-moto python3-flask python3-flask-cors >/dev/null
  have_moto /usr/bin/python3 && py=/usr/bin/python3
fi
if [ -z "$py" ]; then
  echo "with-moto: no python3 with moto's server (pip install 'moto[server]', or apt-get install python3-moto python3-flask python3-flask-cors)" >&2
  exit 1
fi

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# server.py serves moto one request at a time: moto's own threads do not isolate
# single-item writes, which DynamoDB applies atomically (docs/design.md §6.3).
"$py" "$(dirname "$0")/server.py" 127.0.0.1 "$port" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

# Ready when the port accepts connections: poll for up to 60 s (a loaded machine).
deadline=$(( $(date +%s) + 60 ))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-moto: moto.server exited:" >&2; cat "$log" >&2; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "with-moto: moto.server not listening on 127.0.0.1:$port after 60 s" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.2
done
echo "with-moto: moto $("$py" -c 'import importlib.metadata as m; print(m.version("moto"))') on http://127.0.0.1:$port" >&2
export WXSESSION_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
"$@"
