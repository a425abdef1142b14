import { mkdirSync } from 'node:fs';

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

export async function startEmbedded(dir: string): Promise<Embedded> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  mkdirSync(dir, { recursive: true });
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
    },
  };
}
