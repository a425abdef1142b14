#!/usr/bin/env bash
# Full HTTP announce comparison (`make bench`): Shardtrack vs Debian's opentracker vs two
# "hello" servers (hyper-express and raw uWebSockets.js answering a fixed body), plus the
# memory per peer with 1,000,000 peers. See bench/README.md for what each figure means.
#
# Servers run pinned to core $BENCH_SERVER_CPU (0), every load generator to $BENCH_LOAD_CPU (1).
# Rounds are interleaved (round 1: every target, round 2: every target, …, each round
# starting at a different target) and the report gives medians. Every process this script
# starts is stopped by its PID when it ends (also on Ctrl-C). Load only goes to 127.0.0.1.
#
# Knobs (environment):
#   BENCH_SECONDS=10 BENCH_WARMUP=2 BENCH_ROUNDS=3   measured seconds, warm-up seconds, rounds
#   BENCH_CONNECTIONS=100                            connections (keep-alive and close modes)
#   BENCH_TARGETS="shardtrack opentracker hyper uws" which servers to measure; also "nojournal":
#                                                    Shardtrack with checkpoint.enabled=false (no journal
#                                                    of peers' states), what the journal costs in one run
#   BENCH_RSS="shardtrack opentracker"               memory-per-peer runs ("" to skip)
#   BENCH_BASELINE_NODE=/usr/bin/node                also measure Shardtrack on this Node ("baseline",
#                                                    added to both lists): a runtime comparison in one run
#   BENCH_RSS_PEERS=1000000 BENCH_RSS_TORRENTS=50000
#   BENCH_PREFILL=1                                  announce all 200k pool peers before round 1
#   BENCH_PORT=18400                                 first of 9 consecutive ports used
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1
#   BENCH_OUT=bench/results/http-<date>              where raw outputs and report.md go
# Quick smoke run: BENCH_SECONDS=3 BENCH_WARMUP=1 BENCH_ROUNDS=1 BENCH_RSS_PEERS=100000 BENCH_RSS_TORRENTS=5000 bash bench/run-http.sh

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-100}
TARGETS=${BENCH_TARGETS:-shardtrack opentracker hyper uws}
RSS_TARGETS=${BENCH_RSS-shardtrack opentracker}
BASELINE_NODE=${BENCH_BASELINE_NODE:-}
if [ -n "$BASELINE_NODE" ]; then
  TARGETS="$TARGETS baseline"
  RSS_TARGETS="$RSS_TARGETS baseline"
fi
RSS_PEERS=${BENCH_RSS_PEERS:-1000000}
RSS_TORRENTS=${BENCH_RSS_TORRENTS:-50000}
PREFILL=${BENCH_PREFILL:-1}
BASE_PORT=${BENCH_PORT:-18400}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-bench/results/http-$(date +%Y%m%d-%H%M%S)}
NODE=${NODE:-node}

PORT_SHARDTRACK=$BASE_PORT
PORT_OPENTRACKER=$((BASE_PORT + 1))
PORT_HYPER=$((BASE_PORT + 2))
PORT_UWS=$((BASE_PORT + 3))
PORT_RSS_SHARDTRACK=$((BASE_PORT + 4))
PORT_RSS_OPENTRACKER=$((BASE_PORT + 5))
PORT_BASELINE=$((BASE_PORT + 6))
PORT_RSS_BASELINE=$((BASE_PORT + 7))
PORT_NOJOURNAL=$((BASE_PORT + 8))

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
LUA="$ROOT/bench/wrk-announce.lua"
PATHS="$WORK/paths.txt"

# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"


start_server() { # name port logfile command...
  local name=$1 port=$2 logf=$3; shift 3
  if ! tcp_port_free "$port"; then log "port $port is taken; set BENCH_PORT"; return 1; fi
  taskset -c "$SCPU" "$@" >"$logf" 2>&1 &
  PID[$name]=$!
  # ready when the port accepts connections (up to 20 s)
  for _ in $(seq 200); do
    kill -0 "${PID[$name]}" 2>/dev/null || { log "$name exited at start:"; tail -5 "$logf" >&2; unset "PID[$name]"; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  log "$name did not listen on $port within 20 s"; stop_pid "$name"; return 1
}

# one announce (default: first path of the pool); ok if a bencoded dict with peers, no failure reason
LAST_BODY=
check_announce() { # port [path]   (quiet; the answer is left in LAST_BODY)
  LAST_BODY=$(curl -s -m 5 "http://127.0.0.1:$1${2:-$(head -1 "$PATHS")}" | tr -d '\0' | head -c 300)
  [[ $LAST_BODY == d* && $LAST_BODY == *5:peers* && $LAST_BODY != *"failure reason"* ]]
}

start_shardtrack() { # name port [node] [checkpoints: true|false]
  # (each its own data directory: checkpoints and the journal of peers' states, as deployed)
  start_server "$1" "$2" "$OUT/$1.log" env "${NO_LIMITS[@]}" SHARDTRACK_TRACKER__PRIVATE=false SHARDTRACK_HTTP__PORT="$2" \
    SHARDTRACK_HTTP__HOST=127.0.0.1 SHARDTRACK_UDP__PORT=0 SHARDTRACK_SHARDS__COUNT=1 SHARDTRACK_REGISTRY__FILE= SHARDTRACK_DATABASE__ENABLED=false SHARDTRACK_ADMIN__PORT=0 \
    SHARDTRACK_DATABASE__DATA_DIR="$WORK/$1-data" SHARDTRACK_CHECKPOINT__ENABLED="${4:-true}" \
    "${3:-$NODE}" "$ROOT/dist/engine/main.js"
}

start_opentracker() { # name port whitelist [probe-path]
  local d="$WORK/$1"
  mkdir -p "$d" && chmod 755 "$WORK" "$d"
  cp "$3" "$d/whitelist.txt" && chmod 644 "$d/whitelist.txt"
  # the whitelist path is read after the chroot to tracker.rootdir, so it is relative to it
  cat >"$d/opentracker.conf" <<EOF
listen.tcp 127.0.0.1:$2
tracker.rootdir $d
tracker.user nobody
access.whitelist whitelist.txt
EOF
  start_server "$1" "$2" "$OUT/$1.log" opentracker -f "$d/opentracker.conf" || return 1
  # the whitelist is loaded by a background thread: wait until the first hash is accepted
  for _ in $(seq 100); do check_announce "$2" "${4:-}" && return 0; sleep 0.1; done
  log "opentracker on :$2 still refuses whitelisted torrents: ${LAST_BODY:0:120}"; return 1
}

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
active_opens() { awk '/^Tcp:/ { n++; if (n == 2) print $6 }' /proc/net/snmp; }

# ---- one measurement: warm-up (validating), then the measured run; appends to results.jsonl ----
measure() { # target tool mode round port
  local target=$1 tool=$2 mode=$3 round=$4 port=$5 url="http://127.0.0.1:$5"
  local spid=${PID[$target]} tag="$1-$2-$3-r$4" closearg="" bad=0 checked=0
  [ "$mode" = close ] && closearg=close
  kill -0 "$spid" 2>/dev/null || { log "$target is not running; skipping $tag"; return 1; }
  log "measure $tag"
  if [ "$tool" = wrk ]; then
    # warm-up doubles as the answer check: every answer of it is validated
    timeout $((WARMUP + 20)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" -- "$PATHS" $closearg validate \
      >"$OUT/$tag.warmup.txt" 2>&1
    local wj; wj=$(grep '^WRKJSON ' "$OUT/$tag.warmup.txt" | cut -d' ' -f2-)
    [ -n "$wj" ] && { bad=$("$NODE" -pe "JSON.parse(process.argv[1]).bad" "$wj"); checked=$("$NODE" -pe "JSON.parse(process.argv[1]).checked" "$wj"); }
    grep -a '^WRK first bad' "$OUT/$tag.warmup.txt" >&2
  fi
  local t0 t1 c0 c1 o0 o1
  o0=$(active_opens); c0=$(cpu_ticks "$spid"); t0=$(date +%s.%N)
  if [ "$tool" = wrk ]; then
    timeout $((SECS + 30)) /usr/bin/time -f '%U %S %e' -o "$OUT/$tag.time" \
      taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$LUA" "$url" -- "$PATHS" $closearg >"$OUT/$tag.txt" 2>&1
  else
    timeout $((SECS + WARMUP + 60)) /usr/bin/time -f '%U %S %e' -o "$OUT/$tag.time" \
      taskset -c "$LCPU" "$NODE" "$ROOT/bench/http-announce.mjs" --url "$url" --duration "$SECS" --warmup "$WARMUP" \
      --connections "$CONNS" --paths "$PATHS" --json >"$OUT/$tag.txt" 2>&1
  fi
  t1=$(date +%s.%N); c1=$(cpu_ticks "$spid"); o1=$(active_opens)
  local json
  json=$(grep -E '^(WRKJSON|ACJSON) ' "$OUT/$tag.txt" | head -1 | cut -d' ' -f2-)
  if [ -z "$json" ]; then log "no result from $tag:"; tail -5 "$OUT/$tag.txt" >&2; return 1; fi
  "$NODE" -e '
    const [json, target, tool, mode, round, bad, checked, c0, c1, t0, t1, o0, o1, tck, timef] = process.argv.slice(1)
    const r = JSON.parse(json)
    const [u, s, e] = require("fs").readFileSync(timef, "utf8").trim().split("\n").pop().split(" ").map(Number)
    const wall = Number(t1) - Number(t0)
    const requests = tool === "wrk" ? r.requests : r.total
    const out = {
      target, tool, mode, round: Number(round), rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms,
      errors: tool === "wrk" ? r.err_connect + r.err_write + r.err_timeout + r.non2xx + (mode === "close" ? 0 : r.err_read)
                             : r.errors + r.timeouts + r.non2xx,
      read_errors: tool === "wrk" ? r.err_read : 0,
      bad: tool === "wrk" ? Number(bad) : r.bad, checked: tool === "wrk" ? Number(checked) : r.checked,
      requests, opens_per_req: requests ? (Number(o1) - Number(o0)) / requests : null,
      // autocannon reports its own CPU over the measured run; for wrk: user+sys over wall time
      gen_cpu_pct: tool === "wrk" ? ((u + s) / e) * 100 : r.gen_cpu_pct,
      server_cpu_pct: ((Number(c1) - Number(c0)) / Number(tck) / wall) * 100,
    }
    process.stdout.write(JSON.stringify(out) + "\n")
  ' "$json" "$target" "$tool" "$mode" "$round" "$bad" "$checked" "$c0" "$c1" "$t0" "$t1" "$o0" "$o1" "$CLK_TCK" "$OUT/$tag.time" \
    | tee -a "$OUT/results.jsonl" >&2
}

# ---- machine ----
{
  "$NODE" -e '
    const os = require("os"), cp = require("child_process")
    const sh = (c) => { try { return cp.execSync(c, { encoding: "utf8" }).trim() } catch { return "?" } }
    const [secs, warm, rounds, conns, scpu, lcpu, baseline] = process.argv.slice(1)
    process.stdout.write(JSON.stringify({
      date: new Date().toISOString(), nproc: sh("nproc"), cpu: sh("lscpu | sed -n \"s/^Model name: *//p\" | head -1"),
      node: process.version, baseline_node: baseline ? sh(baseline + " -v") : undefined, kernel: sh("uname -sr"), commit: sh("git rev-parse --short HEAD 2>/dev/null") + (sh("git status --porcelain 2>/dev/null | grep -v \" bench/\" | head -1") ? " (+ local changes)" : ""), wrk: sh("wrk -v 2>&1 | head -1 | cut -d\" \" -f1-2"),
      opentracker: sh("dpkg-query -W -f \"\\${Version}\" opentracker"), seconds: +secs, warmup: +warm, rounds: +rounds,
      connections: +conns, server_cpu: +scpu, load_cpu: +lcpu, load_average: os.loadavg().map((x) => x.toFixed(2)).join(" "),
      pool: "10,000 torrents (Zipf 1), 200,000 peers, 30% seeders, compact=1, numwant=50, random peer per request",
    }) + "\n")
  ' "$SECS" "$WARMUP" "$ROUNDS" "$CONNS" "$SCPU" "$LCPU" "$BASELINE_NODE"
} >"$OUT/machine.json"
log "results in $OUT; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 cores: server and load generator will share a core"
command -v wrk >/dev/null || { log "wrk is missing: apt-get install -y wrk"; exit 1; }

# ---- workload ----
"$NODE" bench/pool.mjs --paths "$PATHS" --whitelist "$WORK/whitelist.txt" 2>&1 | tee -a "$OUT/run.log" >&2 || exit 1

# ---- start the servers (they stay up for every round; idle ones cost ~nothing) ----
declare -A PORT=([shardtrack]=$PORT_SHARDTRACK [opentracker]=$PORT_OPENTRACKER [hyper]=$PORT_HYPER [uws]=$PORT_UWS [baseline]=$PORT_BASELINE [nojournal]=$PORT_NOJOURNAL)
RUN=()
for t in $TARGETS; do
  case $t in
    shardtrack | baseline | nojournal)
      if [ ! -f dist/engine/main.js ]; then skip "$t" "dist/engine/main.js not built (run make build)"; continue; fi
      node=$NODE; [ "$t" = baseline ] && node=$BASELINE_NODE
      cps=true; [ "$t" = nojournal ] && cps=false
      start_shardtrack "$t" "${PORT[$t]}" "$node" "$cps" || { skip "$t" "did not start (see $OUT/$t.log)"; continue; }
      check_announce "${PORT[$t]}" || { skip "$t" "does not answer announces with peers yet (answer: ${LAST_BODY:0:80})"; stop_pid "$t"; continue; }
      ;;
    opentracker)
      command -v opentracker >/dev/null || { skip opentracker "not installed (apt-get install -y opentracker)"; continue; }
      start_opentracker opentracker "$PORT_OPENTRACKER" "$WORK/whitelist.txt" || { skip opentracker "did not start or refuses announces"; stop_pid opentracker; continue; }
      ;;
    hyper | uws)
      start_server "$t" "${PORT[$t]}" "$OUT/$t.log" "$NODE" bench/hello.mjs "$t" "${PORT[$t]}" || { skip "$t" "did not start"; continue; }
      ;;
    *) log "unknown target $t"; continue ;;
  esac
  RUN+=("$t")
done

# full swarms before measuring: every pool peer announced once
if [ "$PREFILL" = 1 ]; then
  for t in "${RUN[@]}"; do
    case $t in
      shardtrack | baseline | nojournal) timeout 200 taskset -c "$LCPU" "$NODE" bench/prefill.mjs --url "http://127.0.0.1:${PORT[$t]}" --time-limit 180 2>&1 | tee -a "$OUT/run.log" >&2 ;;
      opentracker) timeout 200 taskset -c "$LCPU" "$NODE" bench/prefill.mjs --url "http://127.0.0.1:${PORT[$t]}" --close --time-limit 180 2>&1 | tee -a "$OUT/run.log" >&2 ;;
    esac
  done
fi

modes_of() {
  case $1 in
    shardtrack | baseline | nojournal) echo "autocannon:keepalive wrk:keepalive wrk:close" ;;
    opentracker) echo "wrk:close" ;;
    hyper) echo "wrk:keepalive wrk:close" ;;
    uws) echo "wrk:keepalive wrk:close autocannon:keepalive" ;;
  esac
}

n=${#RUN[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  log "---- round $r/$ROUNDS ----"
  for ((i = 0; i < n; i++)); do
    t=${RUN[$(((i + r - 1) % n))]}
    for m in $(modes_of "$t"); do
      measure "$t" "${m%%:*}" "${m##*:}" "$r" "${PORT[$t]}"
    done
  done
done

for t in "${RUN[@]}"; do
  stop_pid "$t"
  if [[ $t == shardtrack || $t == baseline || $t == nojournal ]] && grep -qiE 'crash|fatal|error' "$OUT/$t.log"; then
    note "$t.log has $(grep -ciE 'crash|fatal|error' "$OUT/$t.log") lines mentioning crash/fatal/error: $(grep -iE 'crash|fatal|error' "$OUT/$t.log" | head -1 | cut -c1-160)"
  fi
done

# ---- memory per peer: a fresh server, RSS_PEERS distinct peers, RSS before/after ----
for t in $RSS_TARGETS; do
  case $t in
    shardtrack | baseline)
      [ -f dist/engine/main.js ] || { skip "rss-$t" "dist/engine/main.js not built"; continue; }
      node=$NODE port=$PORT_RSS_SHARDTRACK
      [ "$t" = baseline ] && node=$BASELINE_NODE port=$PORT_RSS_BASELINE
      start_shardtrack "rss-$t" "$port" "$node" || { skip "rss-$t" "did not start"; continue; }
      sleep 2 # let start-up allocations settle before the "before" reading
      timeout 400 taskset -c "$LCPU" "$NODE" bench/rss.mjs --pid "${PID[rss-$t]}" --url "http://127.0.0.1:$port" \
        --peers "$RSS_PEERS" --torrents "$RSS_TORRENTS" --time-limit 300 --json >"$OUT/rss-$t.txt" 2>&1
      stop_pid "rss-$t"
      if grep -qiE 'crash|fatal' "$OUT/rss-$t.log"; then
        note "rss-$t.log: $(grep -ciE 'crash|fatal' "$OUT/rss-$t.log") lines mentioning crash/fatal while loading peers: $(grep -iE 'crash|fatal' "$OUT/rss-$t.log" | head -1 | cut -c1-160)"
      fi
      ;;
    opentracker)
      command -v opentracker >/dev/null || { skip rss-opentracker "not installed"; continue; }
      "$NODE" bench/rss.mjs --write-whitelist "$WORK/rss-whitelist.txt" --peers "$RSS_PEERS" --torrents "$RSS_TORRENTS" 2>>"$OUT/run.log"
      probe=$("$NODE" bench/rss.mjs --print-probe --peers "$RSS_PEERS" --torrents "$RSS_TORRENTS")
      start_opentracker rss-opentracker "$PORT_RSS_OPENTRACKER" "$WORK/rss-whitelist.txt" "$probe" ||
        { skip rss-opentracker "did not start or refuses announces"; stop_pid rss-opentracker; continue; }
      sleep 2
      timeout 400 taskset -c "$LCPU" "$NODE" bench/rss.mjs --pid "${PID[rss-opentracker]}" --url "http://127.0.0.1:$PORT_RSS_OPENTRACKER" \
        --peers "$RSS_PEERS" --torrents "$RSS_TORRENTS" --close --time-limit 300 --json >"$OUT/rss-opentracker.txt" 2>&1
      stop_pid rss-opentracker
      ;;
    *) log "unknown rss target $t"; continue ;;
  esac
  grep -v '^RSSJSON' "$OUT/rss-$t.txt" | tee -a "$OUT/run.log" >&2
  j=$(grep '^RSSJSON ' "$OUT/rss-$t.txt" | cut -d' ' -f2-)
  [ -n "$j" ] && "$NODE" -e 'const r = JSON.parse(process.argv[1]); r.target = process.argv[2]; process.stdout.write(JSON.stringify(r) + "\n")' "$j" "$t" >>"$OUT/rss.jsonl"
done

"$NODE" bench/lib/report.mjs "$OUT" | tee "$OUT/report.md"
log "report: $OUT/report.md"
