// IP/CIDR bans and the client allow-list, changed on a running tracker and felt by the
// very next HTTP and UDP request.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseCidr, type BanEntry } from '../dist/engine/policy/bans.js';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, failure, freeUdpPort, get, hash, peerId, pct, startTestTracker } from './helpers.js';

const BANNED = 'your IP address is banned from this tracker';
const NOT_ALLOWED = "your client is not allowed on this tracker; see the site's list of allowed clients";

const nowUnix = () => Math.floor(Date.now() / 1000);
const ban = (cidr: string, expiresAt = 0): BanEntry => ({ ...parseCidr(cidr), expiresAt });

/** Just enough of a BEP 15 client: connect, then announce or scrape; answers by transaction id. */
class Udp {
  private readonly sock: Socket;
  private readonly waiting = new Map<number, (m: Buffer) => void>();
  private conn = Buffer.alloc(8);

  constructor(private readonly port: number) {
    this.sock = createSocket('udp4');
    this.sock.on('message', (m) => m.length >= 8 && this.waiting.get(m.readUInt32BE(4))?.(m));
  }

  private request(b: Buffer): Promise<Buffer> {
    const tid = randomBytes(4).readUInt32BE(0);
    b.writeUInt32BE(tid, 12);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no UDP answer')), 2000);
      this.waiting.set(tid, (m) => {
        clearTimeout(timer);
        this.waiting.delete(tid);
        resolve(m);
      });
      this.sock.send(b, this.port, '127.0.0.1');
    });
  }

  async connect(): Promise<void> {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(0x417, 0);
    b.writeUInt32BE(0x27101980, 4);
    this.conn = (await this.request(b)).subarray(8, 16);
  }

  /** The error text of an error answer, or '' for an announce/scrape answer. */
  private static text(m: Buffer): string {
    return m.readUInt32BE(0) === 3 ? m.subarray(8).toString() : '';
  }

  async announce(id: Uint8Array, port: number): Promise<string> {
    const b = Buffer.alloc(98);
    this.conn.copy(b, 0);
    b.writeUInt32BE(1, 8);
    Buffer.from(hash()).copy(b, 16);
    Buffer.from(id).copy(b, 36);
    b.writeBigUInt64BE(1000n, 64);
    b.writeInt32BE(-1, 92);
    b.writeUInt16BE(port, 96);
    return Udp.text(await this.request(b));
  }

  async scrape(): Promise<string> {
    const b = Buffer.alloc(36);
    this.conn.copy(b, 0);
    b.writeUInt32BE(2, 8);
    Buffer.from(hash()).copy(b, 16);
    return Udp.text(await this.request(b));
  }

  close(): void {
    this.sock.close();
  }
}

describe('bans and the client allow-list', () => {
  let t: Tracker;
  let udp: Udp;

  beforeAll(async () => {
    t = await startTestTracker({ udp: { port: await freeUdpPort() } });
    udp = new Udp(t.udpPort);
    await udp.connect();
  });
  afterEach(() => {
    t.registry.bans.replace([]);
    t.registry.clients.replace([]);
  });
  afterAll(async () => {
    udp?.close();
    await t?.close();
  });

  const announce = (id = peerId()) => get(t.httpPort, announcePath({ infoHash: hash(), peerId: id, port: 6001 }));
  const scrape = () => get(t.httpPort, `/scrape?info_hash=${pct(hash())}`);

  it('refuses a banned address on the next HTTP announce and scrape, until the ban ends', async () => {
    expect(failure((await announce()).body)).toBeUndefined();
    t.registry.bans.replace([ban('203.0.113.0/24'), ban('127.0.0.0/8', nowUnix() + 3600)]);
    expect(failure((await announce()).body)).toBe(BANNED);
    expect(failure((await scrape()).body)).toBe(BANNED);
    // a ban of ::1 or of other IPv4 networks leaves 127.0.0.1 alone; so does an expired one
    t.registry.bans.replace([ban('::1'), ban('203.0.113.0/24'), ban('127.0.0.1', nowUnix() - 1)]);
    expect(failure((await announce()).body)).toBeUndefined();
    expect(failure((await scrape()).body)).toBeUndefined();
    t.registry.bans.replace([ban('127.0.0.1')]);
    expect(failure((await announce()).body)).toBe(BANNED);
    t.registry.bans.replace([]);
    expect(failure((await announce()).body)).toBeUndefined();
  });

  it('refuses a banned address over UDP, announce and scrape', async () => {
    expect(await udp.announce(peerId(), 6002)).toBe('');
    expect(await udp.scrape()).toBe('');
    t.registry.bans.replace([ban('127.0.0.1')]);
    expect(await udp.announce(peerId(), 6002)).toBe(BANNED);
    expect(await udp.scrape()).toBe(BANNED);
    t.registry.bans.replace([]);
    expect(await udp.announce(peerId(), 6002)).toBe('');
  });

  it('refuses clients whose peer_id matches no allowed prefix, HTTP and UDP', async () => {
    const transmission = Buffer.from('-TR4060-abcdefghijkl');
    t.registry.clients.replace([Buffer.from('-qB'), Buffer.from('-TR3')]);
    expect(failure((await announce()).body)).toBeUndefined(); // -qB4630-
    expect(failure((await announce(transmission)).body)).toBe(NOT_ALLOWED);
    expect(await udp.announce(peerId(), 6003)).toBe('');
    expect(await udp.announce(transmission, 6004)).toBe(NOT_ALLOWED);
    t.registry.clients.replace([Buffer.from('-TR4')]);
    expect(failure((await announce()).body)).toBe(NOT_ALLOWED);
    expect(failure((await announce(transmission)).body)).toBeUndefined();
    // the allow-list is about announces: scrapes do not carry a peer_id
    expect(failure((await scrape()).body)).toBeUndefined();
  });
});
