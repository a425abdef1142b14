#!/usr/bin/env bash
# Replication through Redis (README: scale-out), three figures:
#   1. announces/s and CPU per announce of one node with replication on ÷ off, HTTP keep-alive
#      (wrk), on three workloads: "steady" (re-announces of 200,000 known peers: nothing others
#      see changes, nothing is published), "churn" (half the announces move a peer to
#      another port: each of those is published) and "forwarded" (announces of 200,000 peers
#      the second node holds: each is answered here and forwarded there to be accounted;
#      without replication they are the node's own). The replicated node has a second node
#      on the same Redis merging what it publishes and taking what it forwards.
#   2. cross-node visibility lag under load: bench/cluster-lag.mjs (announce at A, presence
#      in an answer at B) while wrk drives A with the churn workload.
#   3. Redis memory per replicated peer: a fresh node filled with BENCH_MEM_PEERS distinct
#      peers (bench/rss.mjs), the exact MEMORY USAGE of its hashes and Redis's used_memory.
#
# The node under test runs pinned to core $BENCH_SERVER_CPU (0); wrk, the second node, the
# probe and the benchmark's own redis-server (on a free port, in memory only: the machine's
# Redis is never touched) on $BENCH_LOAD_CPU (1). Rounds interleave on and off; the report
# gives medians. Every process this script starts is stopped by PID when it ends.
#
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_CONNECTIONS=100 BENCH_LAG_SECONDS=20
#   BENCH_MEM_PEERS=1000000 (0 to skip) BENCH_PORT=18600 BENCH_OUT=bench/results/cluster-<date>
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-100}
LAG_SECS=${BENCH_LAG_SECONDS:-20}
MEM_PEERS=${BENCH_MEM_PEERS:-1000000}
BASE_PORT=${BENCH_PORT:-18600}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-bench/results/cluster-$(date +%Y%m%d-%H%M%S)}
NODE=${NODE:-node}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-cluster.XXXXXX)
LUA="$ROOT/bench/wrk-paths.lua"
# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"

command -v wrk >/dev/null || { log "wrk is missing (apt-get install -y wrk)"; exit 1; }
command -v redis-server >/dev/null || { log "redis-server is missing (apt-get install -y redis-server)"; exit 1; }
[ -f dist/engine/main.js ] || { log "dist/engine/main.js not built (make build)"; exit 1; }

P_OFF=$BASE_PORT P_ON=$((BASE_PORT + 1)) P_B=$((BASE_PORT + 2)) P_MEM=$((BASE_PORT + 3)) P_REDIS=$((BASE_PORT + 9))
REDIS_URL="redis://127.0.0.1:$P_REDIS"
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
rcli() { redis-cli -p "$P_REDIS" "$@"; }

start_node() { # name port cpu [redis prefix]
  local redis=()
  [ -n "${4:-}" ] && redis=(SHARDTRACK_REDIS__URL="$REDIS_URL" SHARDTRACK_REDIS__PREFIX="$4" SHARDTRACK_REDIS__NODE_NAME="$1")
  start_tracker "$1" "$2" "$3" SHARDTRACK_TRACKER__PEER_TIMEOUT=3900 "${redis[@]}"
}

# ---- workloads: the benchmark pool, and the same with every peer on a second port too ----
"$NODE" bench/pool.mjs --paths "$WORK/steady.txt" 2>&1 | tee -a "$OUT/run.log" >&2 || exit 1
awk '{ print; p = $0; if (match(p, /port=[0-9]+/)) { n = substr(p, RSTART + 5, RLENGTH - 5) + 1; print substr(p, 1, RSTART + 4) n substr(p, RSTART + RLENGTH) } }' \
  "$WORK/steady.txt" >"$WORK/churn.txt"

taskset -c "$LCPU" redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$OUT/redis.log" 2>&1 &
PID[redis]=$!
for _ in $(seq 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done
start_node off "$P_OFF" "$SCPU" || exit 1
start_node on "$P_ON" "$SCPU" bench || exit 1
start_node b "$P_B" "$LCPU" bench || exit 1
for p in "$P_OFF" "$P_ON"; do
  prefill "$p"
done
# another pool, whose peers the second node holds (the replicated node as its remote peers)
"$NODE" bench/pool.mjs --seed remote --paths "$WORK/forwarded.txt" 2>&1 | tee -a "$OUT/run.log" >&2 || exit 1
for p in "$P_B" "$P_OFF"; do
  prefill "$p" --seed remote
done
sleep 2

measure() { # target workload round
  local port=$P_OFF; [ "$1" = on ] && port=$P_ON
  local spid=${PID[$1]} c0 c1 t0 t1 rps
  c0=$(cpu_ticks "$spid"); t0=$(date +%s.%N)
  taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$LUA" "http://127.0.0.1:$port" -- "$WORK/$2.txt" >"$OUT/$1-$2-r$3.txt" 2>&1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$spid")
  rps=$(grep '^Requests/sec' "$OUT/$1-$2-r$3.txt" | awk '{print $2}')
  "$NODE" -e 'const [t, w, r, rps, c0, c1, t0, t1, tck] = process.argv.slice(1).map((x, i) => (i < 2 ? x : Number(x)));
    const wall = t1 - t0, reqs = rps * wall;
    console.log(JSON.stringify({ target: t, workload: w, round: r, rps, cpu_us_per_announce: reqs ? (((c1 - c0) / tck) * 1e6) / reqs : null }))' \
    "$1" "$2" "$3" "${rps:-0}" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" | tee -a "$OUT/results.jsonl"
}

for ((r = 1; r <= ROUNDS; r++)); do
  log "---- round $r/$ROUNDS ----"
  for w in steady churn forwarded; do
    if ((r % 2)); then order="off on"; else order="on off"; fi
    for t in $order; do measure "$t" "$w" "$r"; done
  done
done

log "visibility lag under load (churn at the replicated node, probe on core $LCPU)"
taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"$((LAG_SECS + 4))s" -s "$LUA" "http://127.0.0.1:$P_ON" -- "$WORK/churn.txt" >"$OUT/lag-wrk.txt" 2>&1 &
WRK=$!
sleep 2
taskset -c "$LCPU" "$NODE" bench/cluster-lag.mjs --a "http://127.0.0.1:$P_ON" --b "http://127.0.0.1:$P_B" --seconds "$LAG_SECS" | tee "$OUT/lag.txt" >&2
wait "$WRK"
grep -h '^LAGJSON ' "$OUT/lag.txt" | cut -d' ' -f2- | "$NODE" -e 'process.stdin.on("data", (d) => console.log(JSON.stringify({ lag: JSON.parse(d) })))' >>"$OUT/results.jsonl"
log "lag under load: $(grep '^Requests/sec' "$OUT/lag-wrk.txt")"
for n in off on b; do stop_pid "$n"; done

if [ "$MEM_PEERS" -gt 0 ]; then
  log "Redis memory with $MEM_PEERS replicated peers"
  rcli flushall >/dev/null
  base=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}')
  start_node mem "$P_MEM" "$SCPU" mem || exit 1
  sleep 1
  timeout 600 taskset -c "$LCPU" "$NODE" bench/rss.mjs --pid "${PID[mem]}" --url "http://127.0.0.1:$P_MEM" --peers "$MEM_PEERS" --torrents 50000 --time-limit 500 --json \
    >"$OUT/mem-rss.txt" 2>&1
  sleep 3 # (a publish interval, and the last batches applied)
  hashes=0
  for k in $(rcli --scan --pattern 'mem:v1:*:n:*'); do hashes=$((hashes + $(rcli memory usage "$k" samples 0))); done
  fields=0
  for k in $(rcli --scan --pattern 'mem:v1:*:n:*'); do fields=$((fields + $(rcli hlen "$k"))); done
  used=$(rcli info memory | awk -F: '/^used_memory:/ {print $2+0}')
  logs=0
  for k in $(rcli --scan --pattern 'mem:v1:*:log'); do logs=$((logs + $(rcli memory usage "$k" samples 0))); done
  "$NODE" -e 'const [peers, hashes, used, base, logs] = process.argv.slice(1).map(Number);
    console.log(JSON.stringify({ memory: { peers, hash_bytes_per_peer: hashes / peers, used_bytes_per_peer: (used - base) / peers, log_bytes: logs } }))' \
    "$fields" "$hashes" "$used" "$base" "$logs" | tee -a "$OUT/results.jsonl"
  stop_pid mem
fi

# ---- report: medians per target and workload ----
"$NODE" -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
  const out = ["| workload | off announces/s | on announces/s | on ÷ off | CPU µs/announce off | on |", "| --- | ---: | ---: | ---: | ---: | ---: |"];
  for (const w of ["steady", "churn", "forwarded"]) {
    const pick = (t, k) => med(rows.filter((r) => r.target === t && r.workload === w).map((r) => r[k]));
    const off = pick("off", "rps"), on = pick("on", "rps");
    out.push(`| ${w} | ${Math.round(off)} | ${Math.round(on)} | ${(on / off).toFixed(3)} | ${pick("off", "cpu_us_per_announce").toFixed(1)} | ${pick("on", "cpu_us_per_announce").toFixed(1)} |`);
  }
  const lag = rows.find((r) => r.lag)?.lag;
  if (lag) out.push("", `visibility lag under load: p50 ${lag.p50_ms} ms, p90 ${lag.p90_ms} ms, p99 ${lag.p99_ms} ms, max ${lag.max_ms} ms (${lag.samples} samples, ${lag.lost} lost)`);
  const mem = rows.find((r) => r.memory)?.memory;
  if (mem) out.push("", `Redis memory: ${mem.peers} peers, ${mem.hash_bytes_per_peer.toFixed(1)} bytes/peer in the node hashes, ${mem.used_bytes_per_peer.toFixed(1)} bytes/peer of used_memory (logs ${mem.log_bytes} bytes)`);
  require("fs").writeFileSync(process.argv[2], out.join("\n") + "\n");
  console.log(out.join("\n"));
' "$OUT/results.jsonl" "$OUT/report.md"
