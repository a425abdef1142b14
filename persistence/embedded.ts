import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PgliteServer } from './pglite-server.js';

// The embedded default: PostgreSQL 18 compiled to WebAssembly (PGlite) on a data directory,
// served on a Unix socket beside it (pglite-server.ts) so the tracker talks to it with the
// same `postgres` client and the same SQL as to a real server. It computes on the thread
// that hosts it: the persistence thread, never the acceptor.
//
// PGlite has a single backend: connections take turns, one exchange or transaction at a
// time, so each client uses one connection (max: 1) and none LISTENs (nobody else writes).

/**
 * Where the embedded database answers: a Unix socket only this user can open, or a loopback
 * port when the socket's path would be too long for the kernel (108 bytes).
 */
export type EmbeddedAddress = { readonly path: string } | { readonly host: string; readonly port: number };

export interface Embedded {
  readonly address: EmbeddedAddress;
  close(): Promise<void>;
}

/** `postgres` client options that reach the embedded database at `a`. */
export function embeddedClient(a: EmbeddedAddress) {
  return { ...a, user: 'postgres', database: 'postgres', max: 1 } as const;
}

const MAX_SOCKET_PATH = 100;

/**
 * PGlite does not lock its directory, and two processes on one would corrupt it: a pid file
 * beside it says who has it (a tracker, or the CLI), and a live owner is refused.
 */
function lock(dir: string): string {
  const file = `${dir}.pid`;
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    let alive = false;
    try {
      alive = pid > 0 && pid !== process.pid && (process.kill(pid, 0), true);
    } catch {
      alive = false; // no such process: a stale file
    }
    if (alive) throw new Error(`the embedded database in ${dir} is in use by process ${pid} (a running tracker?): stop it first, or use the admin API`);
  }
  writeFileSync(file, String(process.pid));
  return file;
}

export async function startEmbedded(dir: string): Promise<Embedded> {
  const { PGlite } = await import('@electric-sql/pglite');
  mkdirSync(dir, { recursive: true });
  const lockFile = lock(dir);
  const db = await PGlite.create(dir);
  const server = new PgliteServer(db);
  const path = `${dir}.sock`;
  let address: EmbeddedAddress;
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) {
    await server.listen({ path });
    address = { path };
  } else {
    address = { host: '127.0.0.1', port: await server.listen({ host: '127.0.0.1' }) };
  }
  return {
    address,
    async close() {
      await server.close();
      await db.close();
      rmSync(lockFile, { force: true });
      if ('path' in address) rmSync(address.path, { force: true });
    },
  };
}
