#!/usr/bin/env bash
# What the tests need besides node_modules, made true if it can be: PostgreSQL on 127.0.0.1:5432
# and Redis on 127.0.0.1:6379 answering, Debian's Chromium for the browser test (playwright
# cannot download its own browser here), and Debian's python3-grpcio (gRPC C-core) for the interop
# test (PyPI is not reachable, so not pip). Runs before `npm test` and from .ci/run.
set -euo pipefail

answering() { pg_isready -h 127.0.0.1 -p 5432 -q && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && command -v redis-server >/dev/null; then
  echo "starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
for _ in $(seq 1 60); do answering && break; sleep 0.5; done
if ! answering; then
  echo "the tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379" >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser test needs Debian's chromium at /usr/bin/chromium: apt-get install chromium" >&2
    exit 1
  fi
fi

if ! /usr/bin/python3 -c "import grpc" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's python3-grpcio (gRPC C-core) for the interop test" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-grpcio >/dev/null
  else
    echo "the interop test needs gRPC C-core for /usr/bin/python3: apt-get install python3-grpcio" >&2
    exit 1
  fi
fi
