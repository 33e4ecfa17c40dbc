#!/bin/sh
# Bring every service's schema up to date, auth first, stopping at the first failure.
# Each `objectvision-<service> migrate` is idempotent (Alembic upgrade head on its own schema
# and version table), so running this on every `docker compose up` is safe.
set -eu
for service in auth detection notification; do
    echo "[migrate] $(date -u +%Y-%m-%dT%H:%M:%SZ) objectvision-${service} migrate"
    "objectvision-${service}" migrate
done
echo "[migrate] $(date -u +%Y-%m-%dT%H:%M:%SZ) every schema is up to date"
