import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';

// Versioned SQL migrations (persistence/migrations/NNNN_name.sql), applied at start in one
// transaction under an advisory lock: concurrent starters wait for each other, a failed
// migration leaves the database as it was, and a migration that was edited after it was
// applied is refused (its checksum no longer matches) rather than silently diverging.

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string; // sha256 of the file, hex
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The migration files of `dir`, in version order. */
export function loadMigrations(dir: URL | string = new URL('./migrations/', import.meta.url)): Migration[] {
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  const out: Migration[] = [];
  for (const f of readdirSync(path).sort()) {
    const m = FILE.exec(f);
    if (!m) continue;
    const sql = readFileSync(`${path}/${f}`, 'utf8');
    out.push({ version: Number(m[1]), name: m[2], sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration versions must run 1, 2, 3, …: found ${m.version} at position ${i + 1}`);
  });
  return out;
}

export class MigrationError extends Error {}

/**
 * Bring the schema of `sql`'s search_path up to the newest migration. Returns the versions
 * applied now (empty when it was current).
 */
export async function migrate(sql: postgres.Sql, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  return sql.begin(async (tx) => {
    // one migrator per schema at a time; the lock ends with the transaction
    await tx`SELECT pg_advisory_xact_lock(hashtext('shardtrack-migrate:' || current_schema()))`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    const done = await tx<{ version: number; checksum: string }[]>`SELECT version, checksum FROM schema_migrations ORDER BY version`;
    for (const row of done) {
      const m = migrations[row.version - 1];
      if (m === undefined) throw new MigrationError(`the database is at schema version ${row.version}, newer than this tracker knows (${migrations.length})`);
      if (m.checksum !== row.checksum) {
        throw new MigrationError(`migration ${m.version} (${m.name}) was changed after it was applied; add a new migration instead`);
      }
    }
    const applied: number[] = [];
    for (const m of migrations.slice(done.length)) {
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`;
      applied.push(m.version);
    }
    return applied;
  });
}
