#!/usr/bin/env bash
# Make a Docker engine and the sandbox image available, so the Docker tests run (CI never skips
# them). Idempotent: with an engine up and the image built, it returns in about a second.
#   - no engine answering: install docker.io (and debootstrap) from Debian's packages if missing,
#     start dockerd in the background (log: $DOCKERD_LOG), wait up to 60 s for it;
#   - then `cascade sandbox build` (it is itself cached: an up-to-date image is not rebuilt).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '[docker-setup] %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
  missing=()
  command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    # shellcheck disable=SC2024  # the log is ours, not root's
    $SUDO nohup dockerd >"$DOCKERD_LOG" 2>&1 &
  fi
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not answer within 60 s; last log lines:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 3
  fi
  log "engine up: $(docker version --format '{{.Server.Version}}')"
fi

if [ -x .venv/bin/cascade ]; then
  .venv/bin/cascade sandbox build
else
  "$PYTHON" -c 'from cascade.cli.sandbox import sandbox_app; sandbox_app()' build
fi
