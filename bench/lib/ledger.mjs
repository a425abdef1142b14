// The persistence thread's counters, from a tracker's /metrics on its admin listener (served
// without a token on loopback): what bench/suite.mjs and bench/run-ledger.mjs read around a run
// to count exactly the records of its window.

/** Records taken into the journal and records committed to the database, so far. */
export async function ledgerCounters(adminPort) {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
  const read = (name) => Number(new RegExp(`^shardtrack_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return { journalled: read('records_journalled_total'), committed: read('records_committed_total') }
}
