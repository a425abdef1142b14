import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PgliteServer } from './pglite-server.js';
import { pidLock, privateDir } from './private-files.js';

// The embedded default: PostgreSQL 18 compiled to WebAssembly (PGlite) on a data directory,
// served on a private Unix socket (pglite-server.ts) so the tracker talks to it with the
// same `postgres` client and the same SQL as to a real server. It computes on the thread
// that hosts it: the persistence thread, never the acceptor.
//
// PGlite has a single backend: connections take turns, one exchange or transaction at a
// time, so each client uses one connection (max: 1) and none LISTENs (nobody else writes).

/** Where the embedded database answers: a Unix socket only this user can open. */
export interface EmbeddedAddress {
  readonly path: string;
}

export interface Embedded {
  readonly address: EmbeddedAddress;
  close(): Promise<void>;
}

/** `postgres` client options that reach the embedded database at `a`. */
export function embeddedClient(a: EmbeddedAddress) {
  return { path: a.path, user: 'postgres', database: 'postgres', max: 1 } as const;
}

/**
 * PGlite does not lock its directory, and two processes on one would corrupt it: a pid file
 * beside it says who has it (a tracker, or the CLI), and a live owner is refused.
 */
function lock(dir: string): string {
  const file = `${dir}.pid`;
  pidLock(file, (pid) => `the embedded database in ${dir} is in use by process ${pid} (a running tracker?): stop it first, or use the admin API`);
  return file;
}

export async function startEmbedded(dir: string): Promise<Embedded> {
  const { PGlite } = await import('@electric-sql/pglite');
  // PGlite writes its files with the umask's modes: a 0700 directory (and its parent, the
  // data directory) keeps them to this user
  privateDir(dirname(dir));
  privateDir(dir);
  const lockFile = lock(dir);
  const db = await PGlite.create(dir);
  const server = new PgliteServer(db);
  // A fresh directory of its own (mkdtemp makes it 0700) under the system's temporary
  // directory: nobody else can reach the socket, not even between bind and chmod, and the
  // path stays within the kernel's 108 bytes wherever the data directory is.
  const sockDir = mkdtempSync(join(tmpdir(), 'shardtrack-pglite-'));
  const address = { path: join(sockDir, '.s.PGSQL') };
  await server.listen(address.path);
  return {
    address,
    async close() {
      await server.close();
      await db.close();
      rmSync(lockFile, { force: true });
      rmSync(sockDir, { recursive: true, force: true });
    },
  };
}
