import { chmodSync } from 'node:fs';
import net from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

// The PostgreSQL wire protocol in front of PGlite, for the `postgres` client.
//
// PGlite is one backend. Several connections share it (the persistence thread's client,
// the admin API's, the CLI's), so a connection must own the backend for a whole exchange,
// not for one message: a Parse/Bind/Execute/Sync group from one connection interleaved with
// another's Sync loses its unnamed portal ("portal "" does not exist"), and a transaction
// sees another connection's statements. pglite-socket queues message by message and lost
// about a third of concurrent admin writes that way; here a connection owns the backend
// from its first message until the backend says it is idle again (ReadyForQuery 'I'), and
// the others wait their turn in arrival order. Session state (SET, prepared statements) is
// shared by all connections: our clients set only search_path, to the same schema, and
// name prepared statements randomly.

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
const TERMINATE = 0x58; // 'X'
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I': ReadyForQuery status outside a transaction
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);
const MAX_CONNECTIONS = 8;
/**
 * Frontend messages after start-up (PostgreSQL protocol 3): Bind, Close, CopyData, CopyDone,
 * CopyFail, Describe, Execute, Flush, FunctionCall, Parse, password, Query, Sync. PGlite
 * blocks its thread on a type it does not know, so anything else ends the connection.
 */
const FRONTEND = new Set([...'BCdcfDEHFPpQS'].map((c) => c.charCodeAt(0)));
/** A message larger than this ends the connection (our statements are far smaller). */
const MAX_MESSAGE = 256 << 20;

/** Finds ReadyForQuery messages in the backend's output, across chunk boundaries. */
class ReadyScanner {
  private readonly header = new Uint8Array(5);
  private fill = 0;
  private remaining = 0;
  private ready = false;
  /** Status byte of the last ReadyForQuery seen, or 0 since reset(). */
  status = 0;

  reset(): void {
    this.status = 0;
  }

  scan(b: Uint8Array): void {
    let i = 0;
    while (i < b.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, b.length - i);
        if (this.ready) this.status = b[i + n - 1]; // the body is the one status byte
        this.remaining -= n;
        i += n;
        continue;
      }
      this.header[this.fill++] = b[i++];
      if (this.fill === 5) {
        this.fill = 0;
        const h = this.header;
        this.ready = h[0] === READY_FOR_QUERY;
        this.remaining = ((h[1] << 24) | (h[2] << 16) | (h[3] << 8) | h[4]) - 4;
      }
    }
  }
}

class Connection {
  private input: Buffer = Buffer.alloc(0);
  private started = false;
  /** Complete messages not yet run, in order. */
  readonly queue: Uint8Array[] = [];
  closed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly server: PgliteServer,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      server.gone(this);
    });
  }

  private onData(d: Buffer): void {
    this.input = this.input.length === 0 ? d : Buffer.concat([this.input, d]);
    let queued = false;
    for (;;) {
      const b = this.input;
      if (!this.started) {
        // startup packets: length, code, body (no type byte)
        if (b.length < 8) break;
        const len = b.readInt32BE(0);
        if (len < 8 || len > 10_000) return this.end();
        if (b.length < len) break;
        const code = b.readInt32BE(4);
        this.input = b.subarray(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) this.socket.write('N');
        else if (code === CANCEL_REQUEST) return this.end(); // one backend: nothing to cancel
        else if (code === PROTOCOL_3) {
          this.started = true;
          this.queue.push(new Uint8Array(b.subarray(0, len)));
          queued = true;
        } else return this.end();
        continue;
      }
      if (b.length < 5) break;
      const len = b.readInt32BE(1);
      if (len < 4 || len > MAX_MESSAGE) return this.end();
      if (b.length < len + 1) break;
      this.input = b.subarray(len + 1);
      if (b[0] === TERMINATE || !FRONTEND.has(b[0])) return this.end();
      this.queue.push(new Uint8Array(b.subarray(0, len + 1)));
      queued = true;
    }
    if (queued) this.server.wants(this);
  }

  private end(): void {
    this.input = Buffer.alloc(0);
    this.queue.length = 0;
    this.socket.destroy();
  }
}

export class PgliteServer {
  private readonly server: net.Server;
  private readonly conns = new Set<Connection>();
  private readonly waiting: Connection[] = [];
  private owner: Connection | null = null;
  private running = false;
  private readonly out = new ReadyScanner();

  constructor(private readonly db: PGlite) {
    this.server = net.createServer((s) => {
      if (this.conns.size >= MAX_CONNECTIONS) return void s.destroy();
      this.conns.add(new Connection(s, this));
    });
  }

  /**
   * Listen on a Unix socket at `path`, in a directory only this user may enter (the socket
   * is made 0600 too: between bind and chmod the directory keeps others out).
   */
  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        chmodSync(path, 0o600);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  /** `c` has messages to run: it gets the backend when the current owner is done. */
  wants(c: Connection): void {
    if (c !== this.owner && !this.waiting.includes(c)) this.waiting.push(c);
    void this.run();
  }

  gone(c: Connection): void {
    this.conns.delete(c);
    const i = this.waiting.indexOf(c);
    if (i >= 0) this.waiting.splice(i, 1);
    void this.run();
  }

  /** Run queued messages, one owner at a time, until nobody waits. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        if (this.owner === null) {
          const next = this.waiting.shift();
          if (next === undefined) break;
          this.owner = next;
          this.out.reset();
        }
        const c = this.owner;
        if (c.closed) {
          await this.abandon();
          continue;
        }
        const msg = c.queue.shift();
        if (msg === undefined) break; // mid-exchange: its next message calls wants()
        try {
          await this.exec(msg, c);
        } catch {
          // PGlite refused the message outright: this client goes (the next turn cleans up
          // after it), the others keep the backend
          c.socket.destroy();
          c.closed = true;
          continue;
        }
        if (this.out.status === IDLE) {
          this.owner = null;
          if (c.queue.length > 0) this.waiting.push(c);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private exec(msg: Uint8Array, c: Connection | null): Promise<void> {
    return this.db.runExclusive(() =>
      this.db.execProtocolRawStream(msg, {
        onRawData: (d) => {
          this.out.scan(d);
          // a copy: `d` is a view of PGlite's memory, which the next message overwrites
          // while a busy socket still holds the chunk
          if (c !== null && !c.closed) c.socket.write(Buffer.from(d));
        },
      }),
    );
  }

  /** The owner left mid-exchange: end its extended-protocol group and its transaction. */
  private async abandon(): Promise<void> {
    this.owner = null;
    try {
      this.out.reset();
      await this.exec(SYNC, null);
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    } catch {
      // a closed database: nothing left to clean
    }
  }
}
