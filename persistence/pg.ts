// Options every PostgreSQL client of ours shares.
//
// fetch_types: false — the driver (postgres 3.4.x) otherwise runs a query for the array
// types on every new connection, from a message handler that drops its promise: a
// connection terminated during that query (a failover, pg_terminate_backend) becomes an
// unhandled rejection that ends the thread. None of our results holds an array (columns
// go out as comma-joined text, see ledger.ts), so the types are not needed.
export const PG_COMMON = { onnotice: (): void => {}, connect_timeout: 5, fetch_types: false } as const;
