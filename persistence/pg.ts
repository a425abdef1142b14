import type postgres from 'postgres';

// Options every PostgreSQL client of ours shares.
//
// fetch_types: false — the driver (postgres 3.4.x) otherwise runs a query for the array
// types on every new connection, from a message handler that drops its promise: a
// connection terminated during that query (a failover, pg_terminate_backend) becomes an
// unhandled rejection that ends the thread. None of our results holds an array (columns
// go out as comma-joined text, see ledger.ts), so the types are not needed.
export const PG_COMMON = { onnotice: (): void => {}, connect_timeout: 5, fetch_types: false } as const;

// Columns travel cheaply: numbers as one comma-joined text each (the client's per-element
// array escaping cost more than PostgreSQL's work), bytes as one concatenated bytea sliced
// in SQL (the client cannot send arrays of bytea).

/** A column of numbers as a SQL array expression (one text parameter). */
export function nums(tx: postgres.Sql | postgres.TransactionSql, xs: number[], type: 'bigint' | 'int' | 'float8'): postgres.PendingQuery<postgres.Row[]> {
  return tx`string_to_array(${xs.join(',')}, ',')::${tx.unsafe(type)}[]`;
}

/** Byte strings of equal length as one bytea parameter. */
export function bytes(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}
