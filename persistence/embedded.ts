import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

// The embedded default: PostgreSQL 18 compiled to WebAssembly (PGlite) on a data directory,
// served on a loopback port by pglite-socket so the tracker talks to it with the same
// `postgres` client and the same SQL as to a real server. It computes on the thread that
// hosts it: the persistence thread, never the acceptor.
//
// PGlite has a single backend: one open transaction blocks every other connection, so its
// clients use one connection (max: 1) and do not LISTEN (nobody else writes to it).

export interface Embedded {
  /** Connection options for the `postgres` client. */
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

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
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  mkdirSync(dir, { recursive: true });
  const lockFile = lock(dir);
  const db = await PGlite.create(dir);
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 2 });
  await server.start();
  const port = Number(/:(\d+)$/.exec(server.getServerConn())![1]);
  return {
    host: '127.0.0.1',
    port,
    async close() {
      await server.stop();
      await db.close();
      rmSync(lockFile, { force: true });
    },
  };
}
