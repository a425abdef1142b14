#!/usr/bin/env bash
# `make check-deploy`: the deployment files, checked with the tools that can run here
# (images cannot be pulled on this machine): docker-compose's own parser on the compose
# file with a generated .env, `caddy validate` on the Caddyfile, `systemd-analyze verify`
# on the unit, dockerfile-utils' lint and the rules the Dockerfile must keep, and the
# Kubernetes manifests (deploy/check-manifests.mjs). Missing system tools are installed when
# we may (root with apt), else named and failed; the npm ones come with `make build`.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

need() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; }
  fi
  command -v "$1" >/dev/null 2>&1 || { bad "$1 is missing (apt-get install -y $2)"; return 1; }
}

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ENV_FILE=$T/.env SECRETS_DIR=$T/secrets bash deploy/gen-env.sh tracker.example.org >/dev/null || bad "deploy/gen-env.sh"
[ "$(stat -c %a "$T/.env")" = 600 ] && ok ".env is 0600" || bad ".env is not 0600"

# The lines under `key:` at `indent` spaces, up to the next key at that indent, of stdin.
section() { awk -v s="$1$2:" -v i="^$1[a-z]" '$0 == s {on=1; next} on && $0 ~ i {on=0} on'; }

if need docker-compose docker-compose; then
  if out=$(docker-compose --env-file "$T/.env" -f docker-compose.yml config 2>&1); then
    ok "docker-compose config"
    service() { printf '%s\n' "$out" | section '  ' "$1"; }
    # the databases and admin listeners stay inside the compose network
    for svc in postgres redis prometheus; do
      if service "$svc" | grep -q '^    ports:'; then bad "$svc publishes ports"; else ok "$svc publishes no ports"; fi
    done
    # the trackers publish UDP alone (HTTP goes through Caddy; the admin listener nowhere)
    for svc in tracker-1 tracker-2; do
      if service "$svc" | section '    ' ports | grep -q 'protocol: tcp\|/tcp'; then bad "$svc publishes a TCP port"; else ok "$svc publishes UDP only"; fi
    done
    # the trackers and the proxy (the services facing clients) run without capabilities, read-only
    for svc in tracker-1 tracker-2 caddy; do
      if service "$svc" | section '    ' cap_drop | grep -q -- '- ALL' && service "$svc" | grep -q '^    read_only: true' &&
        service "$svc" | section '    ' security_opt | grep -q 'no-new-privileges:true'; then
        ok "$svc: every capability dropped (Caddy keeps NET_BIND_SERVICE), read-only root, no new privileges"
      else bad "$svc keeps capabilities, a writable root or privilege gain"; fi
    done
    service grafana | grep -q '127.0.0.1:3000:3000' && ok "grafana on loopback only" || bad "grafana is not bound to loopback"
  else
    bad "docker-compose config: $out"
  fi
fi

if need caddy caddy; then
  if out=$(SHARDTRACK_DOMAIN=tracker.example.org caddy validate --config deploy/caddy/Caddyfile --adapter caddyfile 2>&1); then ok "caddy validate"; else bad "caddy validate: $(printf '%s' "$out" | tail -3)"; fi
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  # (the unit names /opt/shardtrack and /usr/bin/node, which this machine may not have)
  out=$(systemd-analyze verify deploy/systemd/shardtrack.service 2>&1 | grep -v -e 'is not executable' -e 'No such file or directory' -e '^$')
  if [ -z "$out" ]; then ok "systemd-analyze verify"; else bad "systemd-analyze verify: $out"; fi
else
  bad "systemd-analyze is missing (systemd)"
fi

# The npm tools (devDependencies) run on make's NODE (`make check-deploy` builds first).
node=${NODE:-node}
npm_tools=
if ! [ -d node_modules/dockerfile-utils ] || ! [ -d node_modules/kubernetes-models ] || ! [ -d node_modules/yaml ] || ! [ -d node_modules/typescript ]; then
  bad "node_modules is missing or lacks the checkers (dockerfile-utils, kubernetes-models, yaml, typescript): run make build first"
else
  npm_tools=1
fi

# the Dockerfile: dockerfile-utils' lint (instructions, flags, ports, durations, casing, relative
# WORKDIR...), whose warnings fail too (none stand today); and what it does not check
if [ -n "$npm_tools" ]; then
  if out=$("$node" node_modules/dockerfile-utils/bin/dockerfile-utils lint Dockerfile 2>&1) && [ -z "$out" ]; then
    ok "dockerfile-utils lint"
  else
    bad "dockerfile-utils lint:"; printf '%s\n' "$out" | sed '/^$/d; s/^/     /'
  fi
fi
grep -qE '^USER [1-9][0-9]{3,}' Dockerfile && ok "Dockerfile runs as an unprivileged uid" || bad "Dockerfile does not drop root"
grep -q '^HEALTHCHECK ' Dockerfile && ok "Dockerfile has a health check" || bad "Dockerfile has no HEALTHCHECK"
if grep -E '^FROM ' Dockerfile | grep -qvE '^FROM [a-z0-9./-]+:[0-9]+\.[0-9]+\.[0-9]+-[a-z]+'; then bad "a FROM image is not pinned to a release"; else ok "FROM images pinned"; fi
node_pin=$(grep -oE '^PIN=[0-9.]+' deploy/node-runtime.sh | cut -d= -f2)
if [ -n "$node_pin" ] && ! grep -q "node:$node_pin-" Dockerfile; then bad "the image's Node is not deploy/node-runtime.sh's ($node_pin)"; else ok "the image's Node is the pinned one"; fi

# the Kubernetes manifests: each kind's schema and field names, and our rules (deploy/check-manifests.mjs)
if [ -n "$npm_tools" ]; then
  "$node" deploy/check-manifests.mjs || fail=1
  # kustomize's own rendering of deploy/k8s, where kubectl is installed (no cluster needed)
  if command -v kubectl >/dev/null 2>&1; then
    if out=$(kubectl kustomize deploy/k8s 2>&1 >/dev/null); then ok "kubectl kustomize deploy/k8s"; else bad "kubectl kustomize deploy/k8s: $out"; fi
  fi
fi

exit $fail
