#!/usr/bin/env bash
# Start the local PostgreSQL cluster when it is installed but down, then print the test URL if it answers.
# Prints nothing (and exits 0) where there is no PostgreSQL, so the PostgreSQL tests skip with a reason.
set -u
HOST=127.0.0.1
PORT=5432
if ! pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 30); do
      pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null && break
      sleep 1
    done
  fi
fi
if pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then
  echo "postgresql+psycopg://postgres@${HOST}:${PORT}/test"
fi
