#!/usr/bin/env bash
# UDP announce comparison (BEP 15, BEP 41): Shardtrack (open mode, and private mode with a BEP 41
# passkey) vs Debian's opentracker vs udp-hello (Node dgram answering fixed packets: the ceiling
# of a Node UDP tracker). See the "UDP" section of bench/README.md for what each figure means.
#
# Servers run pinned to core $BENCH_SERVER_CPU (0), the load generator (bench/udp-load.mjs, one
# Node process) to $BENCH_LOAD_CPU (1). Rounds are interleaved (every target once per round, each
# round starting at a different target) and the report gives medians. Every process this script
# starts is stopped by its PID when it ends (also on Ctrl-C). Load only goes to 127.0.0.1 (or ::1).
#
# Knobs (environment):
#   BENCH_SECONDS=10 BENCH_WARMUP=2 BENCH_ROUNDS=3        measured seconds, warm-up seconds, rounds
#   BENCH_UDP_WINDOW=512 BENCH_UDP_SOCKETS=4              requests in flight, client sockets
#   BENCH_UDP_TIMEOUT=1000                                ms before a request counts as lost
#   BENCH_UDP_TARGETS="shardtrack shardtrack-private opentracker hello"
#   BENCH_BASELINE_NODE=/usr/bin/node                     also measure Shardtrack (open mode) on this Node
#                                                         ("baseline"): a runtime comparison in one run
#   BENCH_UDP_HOST=127.0.0.1                              ::1 for IPv6 (the Debian opentracker is IPv4 only)
#   BENCH_PREFILL=1                                       announce all 200k pool peers before round 1
#   BENCH_UDP_PORT=18600                                  first of 8 consecutive ports used (UDP and TCP)
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1
#   BENCH_OUT=bench/results/udp-<date>                    where raw outputs and report.md go
# Quick smoke run (about 1 minute): BENCH_SECONDS=3 BENCH_WARMUP=1 BENCH_ROUNDS=1 bash bench/run-udp.sh

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
WINDOW=${BENCH_UDP_WINDOW:-512}
SOCKETS=${BENCH_UDP_SOCKETS:-4}
TIMEOUT=${BENCH_UDP_TIMEOUT:-1000}
TARGETS=${BENCH_UDP_TARGETS:-shardtrack shardtrack-private opentracker hello}
BASELINE_NODE=${BENCH_BASELINE_NODE:-}
[ -n "$BASELINE_NODE" ] && TARGETS="$TARGETS baseline"
HOST=${BENCH_UDP_HOST:-127.0.0.1}
PREFILL=${BENCH_PREFILL:-1}
BASE_PORT=${BENCH_UDP_PORT:-18600}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-bench/results/udp-$(date +%Y%m%d-%H%M%S)}
NODE=${NODE:-node}
PASSKEY=b3nchUdpPasskey0123456789abcdef0 # 32 letters and digits: the one user of the private run

case $HOST in
  127.0.0.1 | ::1) ;;
  *) echo "BENCH_UDP_HOST must be 127.0.0.1 or ::1 (load stays on loopback)" >&2; exit 2 ;;
esac

declare -A PORT=([shardtrack]=$BASE_PORT [shardtrack-private]=$((BASE_PORT + 2)) [opentracker]=$((BASE_PORT + 4)) [hello]=$((BASE_PORT + 5)) [baseline]=$((BASE_PORT + 6)))
declare -A HTTP_PORT=([shardtrack]=$((BASE_PORT + 1)) [shardtrack-private]=$((BASE_PORT + 3)) [baseline]=$((BASE_PORT + 7)))

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-udp-bench.XXXXXX)

# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"


# udp-load with the common options; pinned to the load core
load() { taskset -c "$LCPU" "$NODE" "$ROOT/bench/udp-load.mjs" --host "$HOST" "$@"; }
passkey_args() { [ "$1" = shardtrack-private ] && printf -- '--passkey\n%s\n' "$PASSKEY"; }

# start a server in the background, pinned; the PID is the server's own (taskset and env exec)
start_bg() { # name logfile command...
  local name=$1 logf=$2; shift 2
  taskset -c "$SCPU" "$@" >"$logf" 2>&1 &
  PID[$name]=$!
}

# wait until a target answers announces over UDP (up to $2 s): 8 announces, all valid
LAST_PROBE=
ready() { # target seconds
  local t=$1
  mapfile -t pk < <(passkey_args "$t")
  LAST_PROBE=$(load --port "${PORT[$t]}" --probe 8 --wait "$2" --timeout 300 --quiet "${pk[@]}" 2>&1 | head -1)
  [[ $LAST_PROBE == *"errors 0, bad 0"* && $LAST_PROBE == *"loss 0.00%"* ]] && kill -0 "${PID[$t]}" 2>/dev/null
}

start_shardtrack() { # target (shardtrack | shardtrack-private | baseline: open mode on $BASELINE_NODE)
  local t=$1 udp=${PORT[$1]} http=${HTTP_PORT[$1]} mode=(SHARDTRACK_TRACKER__PRIVATE=false SHARDTRACK_REGISTRY__FILE=) node=$NODE
  [ "$t" = baseline ] && node=$BASELINE_NODE
  udp_port_free "$udp" && tcp_port_free "$http" || { log "port $udp/udp or $http/tcp is taken; set BENCH_UDP_PORT"; return 1; }
  if [ "$t" = shardtrack-private ]; then
    printf '[[users]]\nid = 1\npasskey = "%s"\n' "$PASSKEY" >"$WORK/registry.toml"
    mode=(SHARDTRACK_TRACKER__PRIVATE=true SHARDTRACK_REGISTRY__FILE="$WORK/registry.toml")
  fi
  start_bg "$t" "$OUT/$t.log" env "${NO_LIMITS[@]}" "${mode[@]}" SHARDTRACK_UDP__PORT="$udp" SHARDTRACK_UDP__HOST="$HOST" \
    SHARDTRACK_HTTP__HOST=127.0.0.1 SHARDTRACK_HTTP__PORT="$http" SHARDTRACK_SHARDS__COUNT=1 SHARDTRACK_DATABASE__ENABLED=false SHARDTRACK_ADMIN__PORT=0 "$node" "$ROOT/dist/engine/main.js"
}

start_opentracker() {
  local d="$WORK/opentracker" port=${PORT[opentracker]} addr
  udp_port_free "$port" || { log "port $port/udp is taken; set BENCH_UDP_PORT"; return 1; }
  [ "$HOST" = ::1 ] && addr="[::1]:$port" || addr="127.0.0.1:$port"
  mkdir -p "$d" && chmod 755 "$WORK" "$d"
  cp "$WORK/whitelist.txt" "$d/whitelist.txt" && chmod 644 "$d/whitelist.txt"
  # UDP only (no listen.tcp: nothing binds TCP); the whitelist path is read after the chroot to
  # tracker.rootdir, so it is relative to it, and a background thread loads it (ready() waits)
  cat >"$d/opentracker.conf" <<EOF
listen.udp $addr
tracker.rootdir $d
tracker.user nobody
access.whitelist whitelist.txt
EOF
  start_bg opentracker "$OUT/opentracker.log" opentracker -f "$d/opentracker.conf"
}

# ---- one measurement; appends to results.jsonl ----
measure() { # target round
  local t=$1 round=$2 tag="$1-r$2" spid=${PID[$1]}
  kill -0 "$spid" 2>/dev/null || { log "$t is not running; skipping $tag"; return 1; }
  log "measure $tag"
  mapfile -t pk < <(passkey_args "$t")
  timeout $((SECS + WARMUP + 60)) taskset -c "$LCPU" "$NODE" "$ROOT/bench/udp-load.mjs" --host "$HOST" --port "${PORT[$t]}" \
    --duration "$SECS" --warmup "$WARMUP" --window "$WINDOW" --sockets "$SOCKETS" --timeout "$TIMEOUT" \
    --server-pid "$spid" --json "${pk[@]}" >"$OUT/$tag.txt" 2>"$OUT/$tag.err"
  grep -v '^udp-load: [0-9]* announce packets' "$OUT/$tag.err" | tee -a "$OUT/run.log" >&2
  local json
  json=$(grep '^UDPJSON ' "$OUT/$tag.txt" | head -1 | cut -d' ' -f2-)
  if [ -z "$json" ]; then log "no result from $tag:"; tail -5 "$OUT/$tag.err" >&2; return 1; fi
  "$NODE" -e '
    const [json, target, round] = process.argv.slice(1)
    const r = JSON.parse(json)
    delete r.server_pid
    process.stdout.write(JSON.stringify({ target, round: Number(round), ...r }) + "\n")
  ' "$json" "$t" "$round" >>"$OUT/results.jsonl"
}

# ---- machine ----
"$NODE" -e '
  const os = require("os"), cp = require("child_process")
  const sh = (c) => { try { return cp.execSync(c, { encoding: "utf8" }).trim() } catch { return "?" } }
  const [secs, warm, rounds, win, socks, tmo, host, scpu, lcpu, baseline] = process.argv.slice(1)
  process.stdout.write(JSON.stringify({
    date: new Date().toISOString(), nproc: sh("nproc"), cpu: sh("lscpu | sed -n \"s/^Model name: *//p\" | head -1"),
    node: process.version, baseline_node: baseline ? sh(baseline + " -v") : undefined, kernel: sh("uname -sr"),
    commit: sh("git rev-parse --short HEAD 2>/dev/null") + (sh("git status --porcelain 2>/dev/null | grep -v \" bench/\" | head -1") ? " (+ local changes)" : ""),
    opentracker: sh("dpkg-query -W -f \"\\${Version}\" opentracker"),
    rmem_default: sh("cat /proc/sys/net/core/rmem_default"), rmem_max: sh("cat /proc/sys/net/core/rmem_max"),
    seconds: +secs, warmup: +warm, rounds: +rounds, window: +win, sockets: +socks, timeout_ms: +tmo, host,
    server_cpu: +scpu, load_cpu: +lcpu, load_average: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    pool: "10,000 torrents (Zipf 1), 200,000 peers, 30% seeders, num_want 50, random peer per request",
  }) + "\n")
' "$SECS" "$WARMUP" "$ROUNDS" "$WINDOW" "$SOCKETS" "$TIMEOUT" "$HOST" "$SCPU" "$LCPU" "$BASELINE_NODE" >"$OUT/machine.json"
log "results in $OUT; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 cores: server and load generator will share a core"

"$NODE" bench/pool.mjs --whitelist "$WORK/whitelist.txt" 2>&1 | tee -a "$OUT/run.log" >&2 || exit 1

# ---- start the servers (they stay up for every round; idle ones cost ~nothing) ----
RUN=()
for t in $TARGETS; do
  case $t in
    shardtrack | shardtrack-private | baseline)
      if [ ! -f dist/engine/main.js ]; then skip "$t" "dist/engine/main.js not built (run make build)"; continue; fi
      start_shardtrack "$t" || { skip "$t" "did not start"; continue; }
      ;;
    opentracker)
      command -v opentracker >/dev/null || { skip opentracker "not installed (apt-get install -y opentracker)"; continue; }
      start_opentracker || { skip opentracker "did not start"; continue; }
      ;;
    hello)
      udp_port_free "${PORT[hello]}" || { skip hello "port ${PORT[hello]}/udp is taken"; continue; }
      start_bg hello "$OUT/hello.log" "$NODE" "$ROOT/bench/udp-hello.mjs" "${PORT[hello]}" "$HOST"
      ;;
    *) log "unknown target $t"; continue ;;
  esac
  sleep 0.3
  if ! kill -0 "${PID[$t]}" 2>/dev/null; then
    skip "$t" "exited at start: $(tail -1 "$OUT/$t.log" | cut -c1-160)"; wait "${PID[$t]}" 2>/dev/null; unset "PID[$t]"; continue
  fi
  if ! ready "$t" 20; then
    if kill -0 "${PID[$t]}" 2>/dev/null; then skip "$t" "does not answer UDP announces (probe: ${LAST_PROBE:0:200})"
    else skip "$t" "exited at start: $(tail -1 "$OUT/$t.log" | cut -c1-160)"; fi
    stop_pid "$t"
    continue
  fi
  log "$t answers: ${LAST_PROBE:0:160}"
  RUN+=("$t")
done
[ ${#RUN[@]} -gt 0 ] || { log "nothing to measure"; exit 1; }

# full swarms before measuring: every pool peer announced once (event=started, num_want 0)
if [ "$PREFILL" = 1 ]; then
  for t in "${RUN[@]}"; do
    [ "$t" = hello ] && continue
    mapfile -t pk < <(passkey_args "$t")
    timeout 200 taskset -c "$LCPU" "$NODE" "$ROOT/bench/udp-load.mjs" --host "$HOST" --port "${PORT[$t]}" --prefill --time-limit 180 \
      --window 256 --quiet "${pk[@]}" 2>&1 | grep -v '^UDPJSON' | sed "s/^/prefill $t: /" | tee -a "$OUT/run.log" >&2
  done
fi

n=${#RUN[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  log "---- round $r/$ROUNDS ----"
  for ((i = 0; i < n; i++)); do
    measure "${RUN[$(((i + r - 1) % n))]}" "$r"
  done
done

for t in "${RUN[@]}"; do
  stop_pid "$t"
  if [[ $t == shardtrack* || $t == baseline ]] && grep -qiE 'crash|fatal|error' "$OUT/$t.log"; then
    note "$t.log has $(grep -ciE 'crash|fatal|error' "$OUT/$t.log") lines mentioning crash/fatal/error: $(grep -iE 'crash|fatal|error' "$OUT/$t.log" | head -1 | cut -c1-160)"
  fi
done

"$NODE" bench/udp-report.mjs "$OUT" | tee "$OUT/report.md"
log "report: $OUT/report.md"
