# Sourced by the benchmark scripts: NO_LIMITS, the settings of no-limits.env (why: there).
mapfile -t NO_LIMITS < <(grep -E '^[A-Z_]+=' "$(dirname "${BASH_SOURCE[0]}")/no-limits.env")
