import type postgres from 'postgres';
import type { Registry } from '../engine/policy/registry.js';
import type { Persistence } from '../persistence/channel.js';
import type { ShardPool } from '../shards/channel.js';
import type { Tokens } from './auth.js';

/** The running tracker as the admin side sees it (read-only use). */
export interface TrackerView {
  readonly pool: ShardPool;
  readonly registry: Registry;
  readonly persistence: Persistence | undefined;
}

/** What route modules work with. */
export interface AdminContext {
  /** The tracker's database (its schema on the search path). */
  readonly sql: postgres.Sql;
  readonly tokens: Tokens;
  /**
   * Apply registry edits to the acceptor's caches now (resolves once they are in force),
   * rather than within the second NOTIFY takes.
   */
  reload(): Promise<void>;
}

/** Offset of a page. */
export const offset = (q: { page: number; per_page: number }): number => (q.page - 1) * q.per_page;
