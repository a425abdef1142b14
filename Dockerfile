# Shardtrack image (README: deployment). Built and run on the official Node 22 image of
# Debian 12: glibc 2.36, above the 2.27 the uWebSockets.js binary for Node 22 (ABI 127)
# needs; the same Node release deploy/node-runtime.sh pins for `make`.

# ---- build: compile TypeScript, then keep only the runtime dependencies
FROM node:22.23.5-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# (no install scripts: nothing needs one, and the test-only WebRTC module would download a build)
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY contract ./contract
COPY engine ./engine
COPY shards ./shards
COPY persistence ./persistence
COPY replication ./replication
COPY admin ./admin
RUN node node_modules/typescript/bin/tsc -p tsconfig.json \
 && cp -r persistence/migrations dist/persistence/ \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: the compiled tracker and its production dependencies, as an unprivileged user
# (these settings are environment variables: they outrank a --config file; override them in
# the environment)
FROM node:22.23.5-bookworm-slim
ENV NODE_ENV=production \
    SHARDTRACK_DATABASE__DATA_DIR=/data \
    SHARDTRACK_HTTP__HOST=0.0.0.0 \
    SHARDTRACK_UDP__HOST=0.0.0.0 \
    SHARDTRACK_ADMIN__HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# a user of its own, with a uid no host login has (uid 1000, the image's `node`, often does);
# the data directory (journal, checkpoints, embedded database, credentials): 0700, its
RUN groupadd --system --gid 10001 shardtrack \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin shardtrack \
 && mkdir -p /data && chown shardtrack:shardtrack /data && chmod 700 /data
USER 10001:10001
VOLUME ["/data"]
# HTTP and WebSocket announces, UDP announces, the admin listener (API, /health, /ready, /metrics)
EXPOSE 8080 6969/udp 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/engine/main.js"]
