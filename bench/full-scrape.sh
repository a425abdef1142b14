#!/usr/bin/env bash
# Announce latency while full scrapes are asked for in a loop (issue 12): with 1,000,000 peers
# in 50,000 swarms loaded, autocannon announces for BENCH_SECONDS, once alone and once beside a
# client that requests /scrape (no info_hash) back to back. Targets, each with full_scrape on:
#   cached      this tree: built on a piscina worker, kept 30 s (the default)
#   rebuilt     this tree: built on a piscina worker, kept 1 s (a new build every second)
#   on-loop     BENCH_OLD_MAIN (a tree from before, whose full scrape ran on the acceptor's loop)
# Trackers on core $BENCH_SERVER_CPU (0), generators on $BENCH_LOAD_CPU (1); rounds interleaved;
# every process it starts is stopped by its PID at the end. Load goes to 127.0.0.1 only.
#
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_OLD_MAIN=/path/to/old/dist/engine/main.js bash bench/full-scrape.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NODE=${NODE:-node}
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OLD=${BENCH_OLD_MAIN:-}
OUT=${BENCH_OUT:-bench/results/full-scrape-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/shardtrack-fullscrape.XXXXXX)
# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"
declare -A PORT MAIN CACHE
PORT=([cached]=18801 [rebuilt]=18802 [on-loop]=18803)
MAIN=([cached]="$ROOT/dist/engine/main.js" [rebuilt]="$ROOT/dist/engine/main.js" [on-loop]="$OLD")
CACHE=([cached]=30 [rebuilt]=1)
TARGETS="cached rebuilt"
[ -n "$OLD" ] && TARGETS="$TARGETS on-loop"

for t in $TARGETS; do
  cache=() # (a tree from before has no such key)
  [ "$t" != on-loop ] && cache=(SHARDTRACK_TRACKER__FULL_SCRAPE_CACHE_SECONDS="${CACHE[$t]}")
  TRACKER_MAIN=${MAIN[$t]} start_tracker "$t" "${PORT[$t]}" "$SCPU" SHARDTRACK_TRACKER__FULL_SCRAPE=true "${cache[@]}" || exit 1
  # 1,000,000 peers in 50,000 swarms (bench/rss.mjs loads them and reports memory too)
  taskset -c "$LCPU" "$NODE" bench/rss.mjs --pid "${PID[$t]}" --url "http://127.0.0.1:${PORT[$t]}" --peers 1000000 --torrents 50000 --settle 1 2>&1 | grep bytes/peer | sed "s/^/$t: /"
done

# GET /scrape back to back until told to stop; prints scrapes and bytes
cat >"$WORK/loop.mjs" <<'EOF'
import http from 'node:http';
const [port, seconds] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const end = Date.now() + seconds * 1000;
let n = 0, bytes = 0, worst = 0;
while (Date.now() < end) {
  const t0 = performance.now();
  bytes += await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/scrape', agent, headers: { 'accept-encoding': 'gzip' } }, (res) => {
      let b = 0;
      res.on('data', (d) => (b += d.length));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  worst = Math.max(worst, performance.now() - t0);
  n++;
}
console.log(JSON.stringify({ scrapes: n, per_second: n / seconds, mean_bytes: Math.round(bytes / Math.max(1, n)), slowest_ms: Math.round(worst) }));
EOF

for ((r = 1; r <= ROUNDS; r++)); do
  for t in $TARGETS; do
    for mode in alone with-scrapes; do
      loop=
      if [ "$mode" = with-scrapes ]; then
        taskset -c "$LCPU" "$NODE" "$WORK/loop.mjs" "${PORT[$t]}" "$((SECS + 2))" >"$OUT/$t-$mode-r$r.loop.json" &
        loop=$!
        sleep 1
      fi
      taskset -c "$LCPU" "$NODE" bench/http-load.mjs --url "http://127.0.0.1:${PORT[$t]}" --duration "$SECS" --warmup 1 \
        --connections 50 2>/dev/null | grep '^RESULT' | cut -d' ' -f2- >"$OUT/$t-$mode-r$r.json"
      [ -n "$loop" ] && wait "$loop"
      echo "$t $mode r$r: $(cat "$OUT/$t-$mode-r$r.json" | cut -c1-160) $(cat "$OUT/$t-$mode-r$r.loop.json" 2>/dev/null)"
    done
  done
done

"$NODE" -e '
const fs = require("fs"), dir = process.argv[1], targets = process.argv[2].split(" ")
const med = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); return s.length ? s[s.length >> 1] : NaN }
console.log("| target | full scrapes | announces/s | p50 ms | p99 ms | full scrapes/s served | slowest full scrape ms |")
console.log("|---|---|---:|---:|---:|---:|---:|")
for (const t of targets) for (const mode of ["alone", "with-scrapes"]) {
  const runs = fs.readdirSync(dir).filter((f) => f.startsWith(`${t}-${mode}-r`) && f.endsWith(".json") && !f.endsWith(".loop.json")).map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8") || "{}"))
  const loops = fs.readdirSync(dir).filter((f) => f.startsWith(`${t}-${mode}-r`) && f.endsWith(".loop.json")).map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8") || "{}"))
  console.log(`| ${t} | ${mode === "alone" ? "none" : "in a loop"} | ${Math.round(med(runs.map((r) => r.rps)))} | ${med(runs.map((r) => r.p50_ms))} | ${med(runs.map((r) => r.p99_ms))} | ${loops.length ? med(loops.map((l) => l.per_second)).toFixed(1) : "–"} | ${loops.length ? med(loops.map((l) => l.slowest_ms)) : "–"} |`)
}
' "$OUT" "$TARGETS" | tee "$OUT/report.md"
