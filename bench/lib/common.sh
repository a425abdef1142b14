# Shared by bench/run-http.sh and bench/run-udp.sh (sourced after OUT, WORK and NODE are set):
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
