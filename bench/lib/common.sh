# Shared by the bench/run-*.sh and bench/full-scrape.sh experiments (sourced after ROOT, OUT, WORK, NODE and LCPU are set):
# logging into $OUT, and process bookkeeping so every server a run starts is stopped by PID,
# also on Ctrl-C.

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }
jstr() { "$NODE" -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }
note() { log "NOTE: $*"; printf '{"note":%s}\n' "$(jstr "$*")" >>"$OUT/notes.jsonl"; }
skip() { log "SKIP $1: $2"; printf '{"target":"%s","reason":%s}\n' "$1" "$(jstr "$2")" >>"$OUT/skipped.jsonl"; }

declare -A PID=()
stop_pid() { # name
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "$1 (pid $p) ignored SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
  fi
  wait "$p" 2>/dev/null
  unset "PID[$1]"
}
cleanup() {
  for n in "${!PID[@]}"; do stop_pid "$n"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

tcp_port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
udp_port_free() { ! ss -lunH "sport = :$1" 2>/dev/null | grep -q .; }


# shellcheck source=no-limits.sh
source "$(dirname "${BASH_SOURCE[0]}")/no-limits.sh"

# start_tracker NAME PORT CPU [SETTING=VALUE …]: a Shardtrack of this tree (or $TRACKER_MAIN)
# on 127.0.0.1:PORT pinned to CPU: open mode, one shard, database, UDP and admin off, every
# limit off, its own data directory; the settings given come last and win. Returns once it
# listens (PID[NAME] holds its PID, $OUT/NAME.log its output).
start_tracker() {
  local name=$1 port=$2 cpu=$3
  shift 3
  taskset -c "$cpu" env "${NO_LIMITS[@]}" SHARDTRACK_TRACKER__PRIVATE=false SHARDTRACK_HTTP__HOST=127.0.0.1 SHARDTRACK_HTTP__PORT="$port" \
    SHARDTRACK_UDP__PORT=0 SHARDTRACK_SHARDS__COUNT=1 SHARDTRACK_REGISTRY__FILE= SHARDTRACK_DATABASE__ENABLED=false \
    SHARDTRACK_ADMIN__ENABLED=false SHARDTRACK_DATABASE__DATA_DIR="$WORK/$name-data" SHARDTRACK_LOG__LEVEL=warn "$@" \
    "$NODE" "${TRACKER_MAIN:-$ROOT/dist/engine/main.js}" >"$OUT/$name.log" 2>&1 &
  PID[$name]=$!
  for _ in $(seq 300); do
    kill -0 "${PID[$name]}" 2>/dev/null || { log "$name exited at start:"; tail -5 "$OUT/$name.log" >&2; unset "PID[$name]"; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  log "$name did not listen on $port within 30 s"
  return 1
}

# prefill PORT [bench/http-load.mjs options]: every peer of the benchmark pool announced once
# (event=started), from the load core, so measured runs see full swarms.
prefill() {
  local port=$1
  shift
  timeout 200 taskset -c "$LCPU" "$NODE" "$ROOT/bench/http-load.mjs" --url "http://127.0.0.1:$port" --prefill --time-limit 180 "$@" 2>&1 |
    tail -1 | tee -a "$OUT/run.log" >&2
}
