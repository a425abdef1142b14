#!/usr/bin/env bash
# Secrets for docker-compose.yml: writes .env (0600) and deploy/secrets/metrics_token, each
# secret random (32 bytes, hex). Refuses to overwrite an existing .env (secrets already in
# use: a new PostgreSQL password would lock the tracker out of its data).
#
#   bash deploy/gen-env.sh [domain]        # default: localhost (a self-signed certificate)
#   ENV_FILE=/tmp/x.env SECRETS_DIR=/tmp/s bash deploy/gen-env.sh   # elsewhere (make check-deploy)
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=${ENV_FILE:-.env}
SECRETS_DIR=${SECRETS_DIR:-deploy/secrets}
DOMAIN=${1:-localhost}
if [ -e "$ENV_FILE" ]; then
  # (PostgreSQL takes its password at its first start: a new one would lock the trackers out
  # of the existing volume; starting over means `docker compose down -v`, which deletes the data)
  echo "$ENV_FILE exists: not overwriting its secrets" >&2
  exit 1
fi
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
metrics=$(secret)
cat >"$ENV_FILE" <<EOT
# made by deploy/gen-env.sh: keep it private (0600), never commit it
SHARDTRACK_DOMAIN=$DOMAIN
POSTGRES_PASSWORD=$(secret)
REDIS_PASSWORD=$(secret)
UDP_CONNECTION_ID_SECRET=$(secret)
METRICS_TOKEN=$metrics
GRAFANA_ADMIN_PASSWORD=$(secret)
# shard threads of each tracker node (two nodes share this host's cores)
SHARDS_PER_NODE=1
EOT
mkdir -p "$SECRETS_DIR"
chmod 700 "$SECRETS_DIR"
printf '%s' "$metrics" >"$SECRETS_DIR/metrics_token"
# (read inside the Prometheus container by its own user; the 0700 directory keeps it private here)
chmod 644 "$SECRETS_DIR/metrics_token"
echo "wrote $ENV_FILE and $SECRETS_DIR/metrics_token (domain $DOMAIN)"
