// A population of simulated clients for the ledger tests: users on torrents, each peer with
// cumulative uploaded/downloaded totals that grow between announces, sessions that stop
// and start again (totals back to 0, as clients do), completions. It knows what the ledger
// must hold: per (user, torrent), the sum over sessions of (last totals − first totals),
// since a peer's first announce is its baseline.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { announcePath, get } from '../helpers.js';

export interface SimUser {
  id: number;
  passkey: string;
}

export interface SimTorrent {
  id: number;
  infoHash: Uint8Array;
  up: number; // upload multiplier
  down: number; // download multiplier (0 = freeleech)
}

interface SimPeer {
  user: SimUser;
  torrent: SimTorrent;
  peerId: Uint8Array;
  up: number;
  down: number;
  left: number;
  active: boolean; // has announced in the current session
  lastAt: number; // Date.now() of its latest announce
  completed: boolean;
}

export interface Totals {
  uploaded: number;
  downloaded: number;
  uploadedCredited: number;
  downloadedCredited: number;
}

/** Create `users` users and `torrents` torrents (a third at 2× upload, a third freeleech). */
export async function seedRegistry(sql: postgres.Sql, users: number, torrents: number): Promise<{ users: SimUser[]; torrents: SimTorrent[] }> {
  const us: SimUser[] = [];
  for (let i = 0; i < users; i++) {
    const [u] = await sql`INSERT INTO users (passkey) VALUES (${randomBytes(16).toString('hex')}) RETURNING id, passkey`;
    us.push({ id: Number(u.id), passkey: u.passkey });
  }
  const ts: SimTorrent[] = [];
  for (let i = 0; i < torrents; i++) {
    const up = i % 3 === 0 ? 2 : 1;
    const down = i % 3 === 1 ? 0 : 1;
    const infoHash = randomBytes(20);
    const [t] = await sql`INSERT INTO torrents (info_hash, upload_multiplier, download_multiplier) VALUES (${infoHash}, ${up}, ${down}) RETURNING id`;
    ts.push({ id: Number(t.id), infoHash, up, down });
  }
  return { users: us, torrents: ts };
}

export class LedgerSim {
  readonly peers: SimPeer[] = [];
  private readonly expected = new Map<string, Totals>();
  completedPairs = new Set<string>();
  /** Sessions may end with `stopped` (off while a tracker may die: a lost stop is a lost delta). */
  stops = true;

  constructor(
    private readonly rnd: () => number,
    users: SimUser[],
    torrents: SimTorrent[],
    peers: number,
  ) {
    for (let i = 0; i < peers; i++) {
      const peerId = randomBytes(20);
      peerId.set(Buffer.from('-SIM001-'), 0);
      this.peers.push({
        user: users[i % users.length],
        torrent: torrents[Math.floor(rnd() * torrents.length)],
        peerId,
        up: 0,
        down: 0,
        left: 1 << 30,
        active: false,
        lastAt: 0,
        completed: false,
      });
    }
  }

  /**
   * The next announce of peer `i` as an HTTP path, with the ledger's expectation updated as
   * if the tracker took it.
   */
  next(i: number): string {
    const p = this.peers[i];
    let event: string | undefined;
    if (!p.active) {
      event = 'started';
      p.active = true;
      p.up = 0;
      p.down = 0;
    } else {
      const r = this.rnd();
      // A stop reports no new bytes and comes seconds after the peer's previous announce:
      // the simulation announces far faster than clients do, and a stop in the same second
      // as a deferred announce of a peer whose announces all came within 2 s of each other
      // earns nothing (shards/shard.ts account: started/stopped pairs must not multiply the
      // allowance). 2.1 s: the tracker's clock ticks once a second, sometimes late.
      const stopping = this.stops && r < 0.05 && Date.now() - p.lastAt > 2100;
      const dUp = stopping ? 0 : Math.floor(this.rnd() * 5_000_000);
      const dDown = stopping ? 0 : p.left > 0 ? Math.min(p.left, Math.floor(this.rnd() * 8_000_000)) : 0;
      p.up += dUp;
      p.down += dDown;
      p.left -= dDown;
      const k = `${p.user.id}:${p.torrent.id}`;
      const t = this.expected.get(k) ?? { uploaded: 0, downloaded: 0, uploadedCredited: 0, downloadedCredited: 0 };
      t.uploaded += dUp;
      t.downloaded += dDown;
      t.uploadedCredited += dUp * p.torrent.up;
      t.downloadedCredited += dDown * p.torrent.down;
      this.expected.set(k, t);
      if (p.left === 0 && !p.completed) {
        event = 'completed';
        p.completed = true;
        this.completedPairs.add(k);
      } else if (stopping) {
        event = 'stopped';
        p.active = false;
      }
    }
    p.lastAt = Date.now();
    return this.path(i, event);
  }

  private path(i: number, event?: string): string {
    const p = this.peers[i];
    return announcePath(
      { infoHash: p.torrent.infoHash, peerId: p.peerId, port: 10000 + (i % 50000), uploaded: p.up, downloaded: p.down, left: p.left, event, numwant: 5 },
      `/${p.user.passkey}`,
    );
  }

  /**
   * Every client in a session reports its totals once more, seconds later (with `stopped`
   * when sessions may stop): a tracker defers the deltas of an announce made in the same
   * second as the peer's previous one to its next announce (shards/shard.ts account), and
   * the run may have ended on such.
   */
  async finish(port: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 2100));
    await Promise.all(this.peers.map((p, i) => {
      if (!p.active) return undefined;
      p.active = !this.stops;
      return get(port, this.path(i, this.stops ? 'stopped' : undefined));
    }));
  }

  /** Announce `count` times, `wave` distinct peers at a time (a peer's announces stay in order). */
  async run(port: number, count: number, wave = 40, onWave?: () => Promise<void>): Promise<void> {
    for (let done = 0; done < count; done += wave) {
      const picked = new Set<number>();
      while (picked.size < Math.min(wave, this.peers.length)) picked.add(Math.floor(this.rnd() * this.peers.length));
      await this.announce(port, [...picked]);
      await onWave?.();
    }
  }

  /** One announce of each of `peers`, concurrently. */
  announce(port: number, peers: number[]): Promise<unknown> {
    return Promise.all(peers.map((i) => get(port, this.next(i))));
  }

  /**
   * Announce until `stopped()` says so, tolerating a tracker that dies meanwhile: a client
   * whose announce failed still moved its bytes, and says so in its next announce.
   */
  async runUntil(port: number, stopped: () => boolean, wave = 40): Promise<number> {
    let sent = 0;
    while (!stopped()) {
      const picked = new Set<number>();
      while (picked.size < Math.min(wave, this.peers.length)) picked.add(Math.floor(this.rnd() * this.peers.length));
      await Promise.allSettled([...picked].map((i) => get(port, this.next(i))));
      sent += picked.size;
    }
    return sent;
  }

  /** What history must hold per "user:torrent". */
  totals(): Map<string, Totals> {
    return this.expected;
  }
}

/** history as the ledger holds it, per "user:torrent". */
export async function ledgerTotals(sql: postgres.Sql): Promise<Map<string, Totals>> {
  const rows = await sql`SELECT user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited FROM history`;
  return new Map(
    rows.map((r) => [
      `${r.user_id}:${r.torrent_id}`,
      { uploaded: Number(r.uploaded), downloaded: Number(r.downloaded), uploadedCredited: Number(r.uploaded_credited), downloadedCredited: Number(r.downloaded_credited) },
    ]),
  );
}

/** The expectation without pairs that never moved a byte (their history row holds zeros). */
export function nonZero(m: Map<string, Totals>): Map<string, Totals> {
  return new Map([...m].filter(([, t]) => t.uploaded + t.downloaded > 0));
}
