#!/usr/bin/env bash
# WebSocket tracker benchmark: Shardtrack next to bittorrent-tracker's server and a minimal
# uWebSockets.js relay (bench/ws-servers.mjs), driven by bench/ws-load.mjs: many browser
# peers, each on its own socket, in 10-peer swarms, announcing with 5 offers in a closed
# loop. Servers on core $BENCH_SERVER_CPU, the generator on $BENCH_LOAD_CPU; rounds
# interleaved, medians in the report. Then the memory per connected peer: a fresh server
# of each, RSS before and while the sockets are held.
#
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_SOCKETS=2000 BENCH_MEM_SOCKETS=5000 bash bench/run-ws.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
SOCKETS=${BENCH_SOCKETS:-2000}
MEM_SOCKETS=${BENCH_MEM_SOCKETS:-5000}
BASE_PORT=${BENCH_PORT:-18600}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-bench/results/ws-$(date +%Y%m%d-%H%M%S)}
NODE=${NODE:-node}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-bench-ws.XXXXXX)
# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"

declare -A PORT=([shardtrack]=$BASE_PORT [bittorrent-tracker]=$((BASE_PORT + 1)) [relay]=$((BASE_PORT + 2)))
start() { # name port
  local name=$1 port=$2
  case $name in
    *shardtrack*)
      taskset -c "$SCPU" env "${NO_LIMITS[@]}" SHARDTRACK_TRACKER__PRIVATE=false SHARDTRACK_HTTP__PORT="$port" SHARDTRACK_HTTP__HOST=127.0.0.1 \
        SHARDTRACK_UDP__PORT=0 SHARDTRACK_SHARDS__COUNT=1 SHARDTRACK_REGISTRY__FILE= SHARDTRACK_DATABASE__ENABLED=false SHARDTRACK_ADMIN__ENABLED=false \
        SHARDTRACK_DATABASE__DATA_DIR="$WORK/$name-data" SHARDTRACK_WS__MESSAGES_PER_SECOND=10000 "$NODE" "$ROOT/dist/engine/main.js" >"$OUT/$name.log" 2>&1 &
      ;;
    *bittorrent-tracker*) taskset -c "$SCPU" "$NODE" bench/ws-servers.mjs bt "$port" >"$OUT/$name.log" 2>&1 & ;;
    *relay*) taskset -c "$SCPU" "$NODE" bench/ws-servers.mjs relay "$port" >"$OUT/$name.log" 2>&1 & ;;
  esac
  PID[$name]=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  log "$name did not listen on $port"; return 1
}
rss() { awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$1/status"; }
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

TARGETS=(shardtrack bittorrent-tracker relay)
for t in "${TARGETS[@]}"; do start "$t" "${PORT[$t]}" || exit 1; done
: >"$OUT/results.jsonl"
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < ${#TARGETS[@]}; i++)); do
    t=${TARGETS[$(((i + r - 1) % ${#TARGETS[@]}))]}
    log "round $r: $t"
    c0=$(cpu "${PID[$t]}"); t0=$(date +%s.%N)
    line=$(timeout $((SECS + 60)) taskset -c "$LCPU" "$NODE" bench/ws-load.mjs --url "ws://127.0.0.1:${PORT[$t]}/announce" --sockets "$SOCKETS" --duration "$SECS")
    c1=$(cpu "${PID[$t]}"); t1=$(date +%s.%N)
    echo "$line" | "$NODE" -e "const l=JSON.parse(require('fs').readFileSync(0,'utf8'));l.target='$t';l.round=$r;l.server_cpu_pct=$((c1 - c0))/$(getconf CLK_TCK)/($t1-$t0)*100;console.log(JSON.stringify(l))" | tee -a "$OUT/results.jsonl"
  done
done
for t in "${TARGETS[@]}"; do stop_pid "$t"; done

: >"$OUT/memory.jsonl"
for t in "${TARGETS[@]}"; do
  start "mem-$t" "${PORT[$t]}" || continue
  sleep 1
  before=$(rss "${PID[mem-$t]}")
  taskset -c "$LCPU" "$NODE" bench/ws-load.mjs --url "ws://127.0.0.1:${PORT[$t]}/announce" --sockets "$MEM_SOCKETS" --idle --duration 6 --warmup 1 >/dev/null &
  gen=$!
  sleep 6
  during=$(rss "${PID[mem-$t]}")
  wait "$gen"
  stop_pid "mem-$t"
  echo "{\"target\":\"$t\",\"sockets\":$MEM_SOCKETS,\"rss_before\":$before,\"rss_during\":$during,\"bytes_per_peer\":$(((during - before) / MEM_SOCKETS))}" | tee -a "$OUT/memory.jsonl"
done
"$NODE" -e "
const fs=require('fs');const rs=fs.readFileSync('$OUT/results.jsonl','utf8').trim().split('\n').map(JSON.parse);
const mem=fs.readFileSync('$OUT/memory.jsonl','utf8').trim().split('\n').filter(Boolean).map(JSON.parse);
const med=(a)=>{a=[...a].sort((x,y)=>x-y);return a[Math.floor(a.length/2)]};
const relay=med(rs.filter(r=>r.target==='relay').map(r=>r.announces_per_s));
const out=['| server | announces/s (median) | ÷ minimal relay | offers relayed/s | p50 ms | p99 ms | server CPU (whole run) | server CPU µs / announce | memory per connected peer |','|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
for (const t of ['shardtrack','bittorrent-tracker','relay']) {
  const x=rs.filter(r=>r.target===t); if(!x.length) continue;
  const a=med(x.map(r=>r.announces_per_s)); const m=mem.find(r=>r.target===t);
  out.push('| '+t+' | '+Math.round(a).toLocaleString('en')+' | '+(a/relay).toFixed(2)+' | '+Math.round(med(x.map(r=>r.offers_relayed_per_s))).toLocaleString('en')+' | '+med(x.map(r=>r.p50_ms)).toFixed(1)+' | '+med(x.map(r=>r.p99_ms)).toFixed(1)+' | '+Math.round(med(x.map(r=>r.server_cpu_pct)))+'% | '+med(x.map(r=>r.server_cpu_pct/100/r.announces_per_s*1e6)).toFixed(1)+' | '+(m?Math.round(m.bytes_per_peer).toLocaleString('en')+' B':'?')+' |');
}
fs.writeFileSync('$OUT/report.md',out.join('\n')+'\n');console.log(out.join('\n'));
"
