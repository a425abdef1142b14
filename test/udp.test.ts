// The UDP tracker (BEP 15, BEP 41) through a real UDP client, IPv4 and IPv6, open and
// private mode, against a real tracker with two shard threads.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { UdpClient, announcePacket, errorText, parseAnnounce } from './support/udp-client.js';
import { announcePath, freeUdpPort, get, hash, hashForShard, peerId, startTestTracker } from './helpers.js';

/** BEP 41 URL data options carrying `url`, split into chunks of at most `chunk` bytes. */
function urlOptions(url: string, chunk = 255, extra: number[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from(extra)];
  const u = Buffer.from(url);
  for (let i = 0; i < u.length; i += chunk) {
    const c = u.subarray(i, i + chunk);
    parts.push(Buffer.from([2, c.length]), c);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

describe('UDP tracker, open mode', () => {
  let t: Tracker;
  let c4: UdpClient;
  let c6: UdpClient;

  beforeAll(async () => {
    t = await startTestTracker({ udp: { port: await freeUdpPort() }, tracker: { interval: 1800, interval_jitter: 0 } });
    c4 = new UdpClient('127.0.0.1', t.udpPort);
    c6 = new UdpClient('::1', t.udpPort);
    await c4.open();
    await c6.open();
  });
  afterAll(async () => {
    c4?.close();
    c6?.close();
    await t?.close();
  });

  it('connects, announces and hands IPv4 peers in 6-byte entries', async () => {
    const conn = await c4.connect();
    const ih = hash();
    const seed = parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7001, left: 0, event: 2 })));
    expect(seed).toMatchObject({ interval: 1800, seeders: 1, leechers: 0, peers: [] });
    const leech = parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7002 })));
    expect(leech).toMatchObject({ seeders: 1, leechers: 1, peers: ['127.0.0.1:7001'] });
  });

  it('shares swarms with HTTP: a UDP leecher gets an HTTP seeder', async () => {
    const ih = hash();
    await get(t.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 7101, left: 0 }));
    const conn = await c4.connect();
    const a = parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7102 })));
    expect(a.peers).toEqual(['127.0.0.1:7101']);
  });

  it('answers IPv6 clients with 18-byte entries of IPv6 peers', async () => {
    const conn = await c6.connect();
    const ih = hash();
    await c6.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7201, left: 0 }));
    const c4conn = await c4.connect();
    await c4.request(announcePacket({ conn: c4conn, infoHash: ih, peerId: peerId(), port: 7202, left: 0 }));
    const a = parseAnnounce(await c6.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7203 })), true);
    expect(a.peers).toEqual([`[${'0'.repeat(31)}1]:7201`]);
    expect(a.seeders).toBe(2);
  });

  it('honours num_want (−1 = default) and stopped', async () => {
    const conn = await c4.connect();
    const ih = hash();
    for (let i = 0; i < 60; i++) await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 8000 + i, left: 0 }));
    expect(parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 9000, numwant: 7 }))).peers).toHaveLength(7);
    expect(parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 9001, numwant: -1 }))).peers).toHaveLength(50);
    const me = peerId();
    await c4.request(announcePacket({ conn, infoHash: ih, peerId: me, port: 9002, left: 0, key: 1 }));
    // another client (another address, another key) cannot stop it
    const intruder = new UdpClient('127.0.0.1', t.udpPort, '127.0.0.2');
    await intruder.open();
    try {
      const iconn = await intruder.connect();
      const other = await intruder.request(announcePacket({ conn: iconn, infoHash: ih, peerId: me, port: 9002, left: 0, event: 3, key: 0xbad }));
      expect(errorText(other)).toMatch(/peer_id is in use/);
      // key 0 is no key: two clients sending 0 do not share a peer
      const zero = peerId();
      await c4.request(announcePacket({ conn, infoHash: ih, peerId: zero, port: 9003, left: 0, key: 0 }));
      expect(errorText(await intruder.request(announcePacket({ conn: iconn, infoHash: ih, peerId: zero, port: 9003, left: 0, event: 3, key: 0 })))).toMatch(/peer_id is in use/);
      await c4.request(announcePacket({ conn, infoHash: ih, peerId: zero, port: 9003, left: 0, event: 3, key: 0 }));
    } finally {
      intruder.close();
    }
    // the owner can, whatever key it sends this time (aria2 sends a new one each announce)
    const stopped = parseAnnounce(await c4.request(announcePacket({ conn, infoHash: ih, peerId: me, port: 9002, left: 0, event: 3, key: 2 })));
    expect(stopped.seeders).toBe(60);
    expect(stopped.peers).toEqual([]);
  });

  it('scrapes many info_hashes across shards, answering in request order', async () => {
    const conn = await c4.connect();
    const hashes = [hashForShard(0, 2), hashForShard(1, 2), hashForShard(1, 2), hashForShard(0, 2)];
    for (const [i, ih] of hashes.entries()) {
      for (let k = 0; k <= i; k++) await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 5000 + k, left: 0 }));
      await c4.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 5100, left: 1, event: 2 }));
    }
    const unknown = hash();
    const list = [hashes[2], unknown, hashes[0], hashes[3], hashes[1], hashes[2]];
    const b = Buffer.alloc(16 + 20 * list.length);
    conn.copy(b, 0);
    b.writeUInt32BE(2, 8);
    b.writeUInt32BE(4242, 12);
    list.forEach((h, i) => Buffer.from(h).copy(b, 16 + i * 20));
    const m = await c4.request(b);
    expect(m.readUInt32BE(0)).toBe(2);
    expect(m.length).toBe(8 + 12 * list.length);
    const rows = list.map((_, i) => [m.readUInt32BE(8 + i * 12), m.readUInt32BE(12 + i * 12), m.readUInt32BE(16 + i * 12)]);
    expect(rows).toEqual([
      [3, 0, 1],
      [0, 0, 0],
      [1, 0, 1],
      [4, 0, 1],
      [2, 0, 1],
      [3, 0, 1],
    ]);
  });

  it('refuses forged connection ids with a short error, and unknown actions', async () => {
    const forged = announcePacket({ conn: randomBytes(8), infoHash: hash(), peerId: peerId(), port: 1 });
    const e = await c4.request(forged);
    expect(e.length).toBeLessThanOrEqual(forged.length);
    expect(errorText(e)).toMatch(/connection id/);
    // an id issued to the IPv4 address is worthless from the IPv6 one
    const conn4 = await c4.connect();
    const stolen = announcePacket({ conn: conn4, infoHash: hash(), peerId: peerId(), port: 1 });
    expect(errorText(await c6.request(stolen))).toMatch(/connection id/);
    // a valid id with an unknown action
    const bad = announcePacket({ conn: conn4, infoHash: hash(), peerId: peerId(), port: 1, action: 9 });
    expect(errorText(await c4.request(bad))).toBe('unknown action');
    // a bad field with a valid id: a readable error
    const badEvent = announcePacket({ conn: conn4, infoHash: hash(), peerId: peerId(), port: 1, event: 7 });
    expect(errorText(await c4.request(badEvent))).toMatch(/unknown event/);
  });

  it('survives a burst of garbage and answers the next valid announce; never amplifies', async () => {
    const raw = new UdpClient('127.0.0.1', t.udpPort);
    await raw.open();
    try {
      const sent: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const len = i % 5 === 0 ? 98 + (i % 40) : i % 120;
        const b = randomBytes(len);
        if (len >= 12 && i % 3 === 0) b.writeUInt32BE(i % 4, 8); // plausible actions with garbage ids
        sent.push(len);
        raw.sendRaw(b);
      }
      // The tracker takes datagrams from one socket in order and answers garbage at once:
      // once the answer to this connect is in, every answer to the garbage is too.
      const conn = await raw.connect();
      const answers = raw.received.slice(0, -1);
      // packets of 16+ bytes with an action and a forged id get an error packet; the rest are dropped
      expect(answers.length).toBeGreaterThan(0);
      for (const m of answers) {
        expect(m.readUInt32BE(0)).toBe(3);
        // never longer than the smallest packet that could have caused it
        expect(m.length).toBeLessThanOrEqual(Math.max(...sent));
        expect(m.length).toBeLessThanOrEqual(98 + 39);
      }
      const a = parseAnnounce(await raw.request(announcePacket({ conn, infoHash: hash(), peerId: peerId(), port: 6000 })));
      expect(a.leechers).toBe(1);
    } finally {
      raw.close();
    }
  });
});

describe('UDP tracker, private mode (BEP 41)', () => {
  const PK = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
  const NOLEECH = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2';
  let t: Tracker;
  let c: UdpClient;
  const registered = hash();

  beforeAll(async () => {
    t = await startTestTracker({ udp: { port: await freeUdpPort() }, tracker: { private: true, require_registered_torrents: true } });
    t.registry.upsertUser({ id: 1, passkey: PK, canLeech: true });
    t.registry.upsertUser({ id: 2, passkey: NOLEECH, canLeech: false });
    t.registry.upsertTorrent({ id: 5, infoHash: registered });
    c = new UdpClient('127.0.0.1', t.udpPort);
    await c.open();
  });
  afterAll(async () => {
    c?.close();
    await t?.close();
  });

  it('takes the passkey from URL data, also split over several options among NOPs and unknown ones', async () => {
    const conn = await c.connect();
    const one = parseAnnounce(await c.request(announcePacket({ conn, infoHash: registered, peerId: peerId(), port: 4001, left: 0, options: urlOptions(`/${PK}/announce`) })));
    expect(one.seeders).toBe(1);
    const split = urlOptions(`/${PK}/announce`, 5, [1, 1, 0x7f, 3, 9, 9, 9, 1]);
    const two = parseAnnounce(await c.request(announcePacket({ conn, infoHash: registered, peerId: peerId(), port: 4002, options: split })));
    expect(two.peers).toEqual(['127.0.0.1:4001']);
  });

  it('refuses what HTTP refuses, with the same reasons', async () => {
    const conn = await c.connect();
    const ask = async (options: Buffer | undefined, infoHash = registered, left = 5) =>
      errorText(await c.request(announcePacket({ conn, infoHash, peerId: peerId(), port: 4100, left, options })));
    expect(await ask(undefined)).toMatch(/private tracker/);
    expect(await ask(urlOptions('/cccccccccccccccccccccccccccccccc/announce'))).toBe('unknown passkey');
    expect(await ask(urlOptions(`/${PK}/announce`), hash())).toBe('torrent not registered with this tracker');
    expect(await ask(urlOptions(`/${NOLEECH}/announce`))).toBe('your leeching privileges are disabled');
    // and a scrape, which has no room for a passkey, is refused
    const b = Buffer.alloc(36);
    conn.copy(b, 0);
    b.writeUInt32BE(2, 8);
    b.writeUInt32BE(99, 12);
    Buffer.from(registered).copy(b, 16);
    expect(errorText(await c.request(b))).toMatch(/scrape over HTTP/);
  });
});

describe('UDP connection ids shared by nodes (udp.connection_id_secret)', () => {
  it('accepts on one tracker the connection id another issued, and only with the same secret', async () => {
    const secret = randomBytes(24).toString('hex');
    const a = await startTestTracker({ udp: { port: await freeUdpPort(), connection_id_secret: secret } });
    const b = await startTestTracker({ udp: { port: await freeUdpPort(), connection_id_secret: secret } });
    const other = await startTestTracker({ udp: { port: await freeUdpPort() } });
    const ca = new UdpClient('127.0.0.1', a.udpPort);
    const cb = new UdpClient('127.0.0.1', b.udpPort);
    const co = new UdpClient('127.0.0.1', other.udpPort);
    try {
      for (const c of [ca, cb, co]) await c.open();
      const conn = await ca.connect(); // from node A
      const ih = hash();
      // a load balancer sends the next packet to node B: the id holds there
      expect(parseAnnounce(await cb.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7301, left: 0 })))).toMatchObject({ seeders: 1 });
      expect(parseAnnounce(await ca.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7302, left: 0 })))).toMatchObject({ seeders: 1 });
      // a node without the secret refuses it
      expect(errorText(await co.request(announcePacket({ conn, infoHash: ih, peerId: peerId(), port: 7303, left: 0 })))).toMatch(/connection/i);
    } finally {
      for (const c of [ca, cb, co]) c.close();
      for (const t of [a, b, other]) await t.close();
    }
  });

  it('refuses a secret too short to be one', async () => {
    await expect(startTestTracker({ udp: { port: 0, connection_id_secret: 'short' } })).rejects.toThrow(/at least 32 characters/);
  });
});
