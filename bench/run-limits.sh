#!/usr/bin/env bash
# What the limits and the no-accounting rule cost (issue 13): keep-alive HTTP announces/s of
# one Shardtrack in open mode, database off,
#   off      every limit off (what make bench measures);
#   on       every limit on, set so that this load is never refused (rates of 1,000,000/s,
#            min interval enforced at 1 s, caps far above the load): the cost of the checks;
#   db       every limit off, database on (local PostgreSQL, a schema of its own): open-mode
#            announces leave no accounting record, so this should match `off`;
# in interleaved rounds (round r starts at target r), server pinned to $BENCH_SERVER_CPU and
# wrk to $BENCH_LOAD_CPU, medians in $OUT/report.md. Then the limiter's memory after a
# flood from 100,000 distinct loopback addresses (bench/limiter-flood.mjs).
#
#   BENCH_SECONDS=10 BENCH_WARMUP=2 BENCH_ROUNDS=3 BENCH_CONNECTIONS=100 BENCH_PORT=18600
#   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test   ("" skips the db target)
#   BENCH_FLOOD=100000                                      addresses of the flood (0 skips it)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-100}
BASE_PORT=${BENCH_PORT:-18600}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
PG_URL=${BENCH_PG_URL-postgres://postgres@127.0.0.1:5432/test}
FLOOD=${BENCH_FLOOD:-100000}
OUT=${BENCH_OUT:-bench/results/limits-$(date +%Y%m%d-%H%M%S)}
NODE=${NODE:-node}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-limits.XXXXXX)
LUA="$ROOT/bench/wrk-paths.lua"
PATHS="$WORK/paths.txt"
# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"

SCHEMA=bench_limits_$$
ON=(SHARDTRACK_LIMITS__ADDRESS_RATE=1000000 SHARDTRACK_LIMITS__ADDRESS_BURST=10000000 SHARDTRACK_LIMITS__PASSKEY_RATE=1000000
  SHARDTRACK_LIMITS__PASSKEY_BURST=10000000 SHARDTRACK_LIMITS__ENFORCE_MIN_INTERVAL=true SHARDTRACK_TRACKER__MIN_INTERVAL=1
  SHARDTRACK_LIMITS__MAX_SWARMS_PER_ADDRESS=10000000 SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS=65535
  SHARDTRACK_LIMITS__AUTOBAN_FAILURES=100 SHARDTRACK_TRACKER__MAX_PEERS_PER_USER_TORRENT=3)
TARGETS="off on"
[ -n "$PG_URL" ] && TARGETS="$TARGETS db"
declare -A PORT=([off]=$BASE_PORT [on]=$((BASE_PORT + 1)) [db]=$((BASE_PORT + 2)))

start() { # target
  local t=$1 extra=()
  case $t in
    off) extra=("${NO_LIMITS[@]}") ;;
    on) extra=("${ON[@]}") ;;
    db) extra=(SHARDTRACK_DATABASE__ENABLED=true SHARDTRACK_DATABASE__URL="$PG_URL" SHARDTRACK_DATABASE__SCHEMA="$SCHEMA") ;;
  esac
  start_tracker "$t" "${PORT[$t]}" "$SCPU" SHARDTRACK_TRACKER__INTERVAL=10 SHARDTRACK_TRACKER__MIN_INTERVAL=5 "${extra[@]}" || { log "$t did not start"; return 1; }
}

"$NODE" bench/pool.mjs --paths "$PATHS" --whitelist "$WORK/whitelist.txt" >/dev/null 2>&1 || exit 1
for t in $TARGETS; do
  start "$t" || exit 1
  prefill "${PORT[$t]}"
done
: >"$OUT/results.jsonl"
read -ra LIST <<<"$TARGETS"
for r in $(seq "$ROUNDS"); do
  for k in $(seq 0 $((${#LIST[@]} - 1))); do
    t=${LIST[$(((k + r - 1) % ${#LIST[@]}))]}
    url="http://127.0.0.1:${PORT[$t]}"
    timeout $((WARMUP + 20)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" -- "$PATHS" validate >"$OUT/$t.r$r.warmup.txt" 2>&1
    timeout $((SECS + 20)) taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$LUA" "$url" -- "$PATHS" >"$OUT/$t.r$r.txt" 2>&1
    json=$(grep '^WRKJSON ' "$OUT/$t.r$r.txt" | cut -d' ' -f2-)
    bad=$(grep '^WRKJSON ' "$OUT/$t.r$r.warmup.txt" | cut -d' ' -f2- | "$NODE" -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).bad' 2>/dev/null)
    log "round $r $t: $("$NODE" -pe 'JSON.parse(process.argv[1]).rps' "$json") announces/s (bad answers in the validated warm-up: ${bad:-?})"
    "$NODE" -e 'const r = JSON.parse(process.argv[1]); r.target = process.argv[2]; r.round = +process.argv[3]; r.bad = process.argv[4]; console.log(JSON.stringify(r))' "$json" "$t" "$r" "${bad:-}" >>"$OUT/results.jsonl"
  done
done
for t in $TARGETS; do stop_pid "$t"; done
[ -n "$PG_URL" ] && "$NODE" -e 'const p = require("postgres"); const s = p(process.argv[1], { max: 1, onnotice() {} }); s.unsafe(`DROP SCHEMA IF EXISTS ${process.argv[2]} CASCADE`).then(() => s.end())' "$PG_URL" "$SCHEMA"

"$NODE" -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const by = {};
  for (const r of rows) (by[r.target] ??= []).push(r);
  const base = med(by.off.map((r) => r.rps));
  let md = "| target | announces/s (median) | vs off | p50 ms | p99 ms | rounds |\n| --- | --- | --- | --- | --- | --- |\n";
  for (const [t, rs] of Object.entries(by)) {
    const rps = med(rs.map((r) => r.rps));
    md += `| ${t} | ${Math.round(rps).toLocaleString("en")} | ${(rps / base).toFixed(3)} | ${med(rs.map((r) => r.p50_ms)).toFixed(2)} | ${med(rs.map((r) => r.p99_ms)).toFixed(2)} | ${rs.map((r) => Math.round(r.rps)).join(", ")} |\n`;
  }
  require("fs").writeFileSync(process.argv[2], md);
  process.stdout.write(md);
' "$OUT/results.jsonl" "$OUT/report.md"

if [ "$FLOOD" -gt 0 ]; then
  taskset -c "$LCPU" "$NODE" bench/limiter-flood.mjs --addresses "$FLOOD" --server-cpu "$SCPU" --port $((BASE_PORT + 3)) | tee -a "$OUT/report.md"
fi
