# Sourced by the benchmark scripts.
# One load generator on one address sends what thousands of clients would: the per-address
# and per-passkey limits (README: Limits) would refuse it. Throughput runs turn them off;
# bench/run-limits.sh measures what they cost.
NO_LIMITS=(SHARDTRACK_LIMITS__ADDRESS_RATE=0 SHARDTRACK_LIMITS__PASSKEY_RATE=0 SHARDTRACK_LIMITS__ENFORCE_MIN_INTERVAL=false
  SHARDTRACK_LIMITS__MAX_SWARMS_PER_ADDRESS=0 SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS=0 SHARDTRACK_LIMITS__AUTOBAN_FAILURES=0
  SHARDTRACK_TRACKER__MAX_PEERS_PER_USER_TORRENT=0)
