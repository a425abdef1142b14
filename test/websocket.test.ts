// The WebSocket tracker with the `bittorrent-tracker` npm client, the one WebTorrent uses:
// two clients in one swarm exchange an offer and its answer through Shardtrack, scrape
// counts them (over WebSocket and HTTP alike), a closed socket's peers leave, private mode
// refuses a bad passkey before the upgrade, and malformed messages get a failure reason or
// a close while every other socket is served. The client's WebRTC is replaced by offers and
// answers the test makes up (the tracker relays them opaque, never reading them).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import Client from 'bittorrent-tracker/client';
import WebSocketTracker from 'bittorrent-tracker/websocket-tracker';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRawKeys, get, hexKey, pct, scrapeCounts, startTestTracker, until } from './helpers.js';
import { seedRegistry } from './support/ledger-sim.js';
import { perTestLedger } from './support/ledger-trackers.js';

/** A stand-in for simple-peer: records what it is signalled, answers an offer with a made-up answer. */
class FakePeer extends EventEmitter {
  id = '';
  trackerTimeout: NodeJS.Timeout | null = null;
  readonly signals: { type: string; sdp: string }[] = [];
  constructor(readonly label: string) {
    super();
  }
  signal(data: { type: string; sdp: string }): void {
    this.signals.push(data);
    if (data.type === 'offer') setImmediate(() => this.emit('signal', { type: 'answer', sdp: `answer from ${this.label} to ${data.sdp}` }));
  }
  destroy(): void {}
}

type Proto = { _generateOffers: unknown; _createPeer: unknown; peers: Record<string, FakePeer>; client: { peerId: string } };

beforeAll(() => {
  // offers made up here, each remembered like the real client remembers its peers
  const proto = (WebSocketTracker as unknown as { prototype: Proto }).prototype;
  proto._generateOffers = function (this: Proto, numwant: number, cb: (offers: unknown[]) => void) {
    const offers = Array.from({ length: numwant }, (_, i) => {
      const offerId = randomBytes(20);
      this.peers[offerId.toString('hex')] = new FakePeer(`offerer ${this.client.peerId}`);
      return { offer: { type: 'offer', sdp: `offer ${i} of ${this.client.peerId}` }, offer_id: offerId.toString('latin1') };
    });
    cb(offers);
  };
  proto._createPeer = function (this: Proto) {
    return new FakePeer(`answerer ${this.client.peerId}`);
  };
});

const running: Tracker[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const t of running.splice(0)) await t.close();
});

async function start(overrides = {}): Promise<Tracker> {
  const t = await startTestTracker(overrides);
  running.push(t);
  return t;
}

/** A client with a socket of its own (the client shares one per URL: as two browsers, not two tabs). */
function client(t: Tracker, infoHash: Buffer, left: number, path = '/announce'): { c: Client; peerId: string; peers: FakePeer[]; warnings: string[] } {
  const peerId = randomBytes(20).toString('hex');
  const c = new Client({ infoHash, peerId, announce: [`ws://127.0.0.1:${t.httpPort}${path}?browser=${peerId}`], port: 6881, getAnnounceOpts: () => ({ left, uploaded: 0, downloaded: 0 }) });
  clients.push(c);
  const peers: FakePeer[] = [];
  const warnings: string[] = [];
  c.on('peer', (p: FakePeer) => peers.push(p));
  c.on('warning', (e: Error) => warnings.push(e.message));
  c.on('error', (e: Error) => warnings.push(e.message));
  return { c, peerId, peers, warnings };
}

/** A raw WebSocket to the tracker: its messages (parsed) and how it closed. */
async function socket(t: Tracker, path = '/announce'): Promise<{ ws: WebSocket; got: unknown[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${t.httpPort}${path}`);
  const got: unknown[] = [];
  ws.onmessage = (e) => got.push(JSON.parse(String(e.data)));
  const closed = new Promise<{ code: number; reason: string }>((r) => (ws.onclose = (e) => r({ code: e.code, reason: e.reason })));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('the WebSocket did not open'));
  });
  return { ws, got, closed };
}

const bin = (b: Buffer) => b.toString('latin1');

/** [complete, incomplete] of `ih` by an HTTP scrape (with the passkey in private mode). */
const httpScrape = (t: Tracker, ih: Buffer, passkey?: string): Promise<[number, number]> => scrapeCounts(t.httpPort, ih, passkey);

describe('WebSocket tracker with the bittorrent-tracker client', () => {
  it('relays an offer and its answer between two clients of a swarm, and scrape counts them', async () => {
    const t = await start();
    const ih = randomBytes(20);
    const seeder = client(t, ih, 0);
    const updates: unknown[] = [];
    seeder.c.on('update', (u: unknown) => updates.push(u));
    seeder.c.start();
    await until('the seeder announced', () => updates.length > 0, 10_000);
    expect(updates[0]).toMatchObject({ complete: 1, incomplete: 0, interval: 120 });
    const leecher = client(t, ih, 1000);
    leecher.c.start(); // with 5 offers: one goes to the seeder, the only other WebSocket peer
    await until('the offer at the seeder and the answer back at the leecher', () => seeder.peers.length === 1 && leecher.peers.length === 1, 10_000);
    const atSeeder = seeder.peers[0];
    expect(atSeeder.id).toBe(leecher.peerId); // the offerer's peer_id came with the offer
    expect(atSeeder.signals[0]).toMatchObject({ type: 'offer', sdp: expect.stringMatching(new RegExp(`^offer \\d of ${leecher.peerId}$`)) });
    const atLeecher = leecher.peers[0];
    expect(atLeecher.id).toBe(seeder.peerId);
    expect(atLeecher.signals).toEqual([{ type: 'answer', sdp: `answer from answerer ${seeder.peerId} to ${atSeeder.signals[0].sdp}` }]);
    expect(seeder.warnings).toEqual([]);
    expect(leecher.warnings).toEqual([]);

    const scrapes: { complete: number; incomplete: number }[] = [];
    leecher.c.on('scrape', (s: { complete: number; incomplete: number }) => scrapes.push(s));
    leecher.c.scrape();
    await until('the scrape', () => scrapes.length > 0, 10_000);
    expect(scrapes[0]).toMatchObject({ complete: 1, incomplete: 1, downloaded: 0 });
    expect(await httpScrape(t, ih)).toEqual([1, 1]); // peers of their swarm for every protocol
    expect(t.ws!.stats).toMatchObject({ sockets: 2, offersRelayed: 1, answersRelayed: 1, relaysDropped: 0 });

    // the seeder's socket closes: its peer leaves at once
    seeder.c.destroy();
    await until('the seeder gone', async () => JSON.stringify(await httpScrape(t, ih)) === '[0,1]', 10_000);
    expect(t.ws!.stats.sockets).toBe(1);
  });

  it('answers HTTP clients without WebSocket peers and WebSocket clients without HTTP peers', async () => {
    const t = await start();
    const ih = randomBytes(20);
    const r = await get(t.httpPort, `/announce?info_hash=${pct(ih)}&peer_id=${pct(randomBytes(20))}&port=7000&uploaded=0&downloaded=0&left=0&compact=1`);
    expect(r.status).toBe(200);
    const { ws, got } = await socket(t);
    ws.send(JSON.stringify({ action: 'announce', info_hash: bin(ih), peer_id: bin(randomBytes(20)), left: 5, offers: [{ offer: { type: 'offer', sdp: 'x' }, offer_id: bin(randomBytes(20)) }] }));
    await until('the answer', () => got.length > 0, 5_000);
    expect(got[0]).toEqual({ action: 'announce', interval: 120, info_hash: bin(ih), complete: 1, incomplete: 1 });
    expect(t.ws!.stats.offersRelayed).toBe(0); // the HTTP seeder cannot take a WebRTC offer
    const peers = (decodeRawKeys((await get(t.httpPort, `/announce?info_hash=${pct(ih)}&peer_id=${pct(randomBytes(20))}&port=7001&uploaded=0&downloaded=0&left=5&compact=1`)).body) as Map<string, unknown>).get(hexKey('peers')) as Uint8Array;
    expect(Buffer.from(peers).length).toBe(6); // the HTTP seeder only
    ws.close();
  });
});

describe('WebSocket tracker, private', () => {
  it('refuses a bad passkey before the upgrade and serves a good one', async () => {
    const t = await start({ tracker: { private: true } });
    t.registry.upsertUser({ id: 1, passkey: 'a'.repeat(32), canLeech: true });
    await expect(socket(t, `/${'b'.repeat(32)}/announce`)).rejects.toThrow(/did not open/);
    await expect(socket(t, '/announce')).rejects.toThrow(/did not open/);
    const { ws, got } = await socket(t, `/${'a'.repeat(32)}/announce`);
    const ih = randomBytes(20);
    ws.send(JSON.stringify({ action: 'announce', info_hash: bin(ih), peer_id: bin(randomBytes(20)), left: 0, uploaded: 0, downloaded: 0, event: 'started' }));
    await until('the answer', () => got.length > 0, 5_000);
    expect(got[0]).toMatchObject({ action: 'announce', complete: 1, incomplete: 0 });
    ws.close();
  });
});

describe('WebSocket tracker, sockets per address', () => {
  it('refuses an upgrade past ws.max_sockets_per_address, and takes one again once a socket closed', async () => {
    const t = await start({ ws: { max_sockets_per_address: 3 } });
    const open = [await socket(t), await socket(t), await socket(t)];
    await expect(socket(t)).rejects.toThrow(/did not open/);
    open[0].ws.close();
    await open[0].closed;
    await until('the count back under the cap', () => t.ws!.stats.sockets === 2, 5_000);
    const again = await socket(t);
    for (const s of [open[1], open[2], again]) s.ws.close();
  });
});

describe('WebSocket tracker, accounted', () => {
  const ledger = perTestLedger();
  const trackers = ledger.trackers;
  it('credits WebSocket announces like HTTP ones, and a closed socket adds nothing', async () => {
    const db = ledger.db;
    const t = await trackers.start(db.name, mkdtempSync(join(tmpdir(), 'shardtrack-ws-db-')));
    const { users, torrents } = await seedRegistry(db.sql, 2, 1);
    await until('the registry reload', () => t.registry.registeredTorrents === 1 && t.registry.userCount >= 3, 15_000);
    const ih = bin(Buffer.from(torrents[0].infoHash));
    const seeder = await socket(t, `/${users[0].passkey}/announce`);
    const leecher = await socket(t, `/${users[1].passkey}/announce`);
    const send = (s: { ws: WebSocket }, pid: string, o: object) => s.ws.send(JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, ...o }));
    const S = bin(randomBytes(20));
    const L = bin(randomBytes(20));
    send(leecher, L, { uploaded: 0, downloaded: 0, left: 1000, event: 'started' });
    await until('the leecher in', () => leecher.got.length === 1, 5_000);
    send(seeder, S, { uploaded: 0, downloaded: 0, left: 0, event: 'started' });
    await until('the seeder in', () => seeder.got.length === 1, 5_000);
    await new Promise((r) => setTimeout(r, 2100)); // (deltas within one tracker second wait for the next announce)
    send(seeder, S, { uploaded: 500, downloaded: 0, left: 0 });
    await until('the seeder again', () => seeder.got.length === 2, 5_000);
    expect(seeder.got[1]).toMatchObject({ complete: 1, incomplete: 1 });
    seeder.ws.close(); // its peer stops at the totals it last reported
    await seeder.closed;
    await until('the seeder gone', async () => JSON.stringify(await httpScrape(t, Buffer.from(torrents[0].infoHash), users[1].passkey)) === '[0,1]', 5_000);
    await trackers.stop(t);
    const [h] = await db.sql`SELECT uploaded, uploaded_credited FROM history WHERE user_id = ${users[0].id} AND torrent_id = ${torrents[0].id}`;
    expect([Number(h.uploaded), Number(h.uploaded_credited)]).toEqual([500, 1000]); // (its upload multiplier is 2)
    expect(await db.sql`SELECT kind FROM cheat_flags`).toEqual([]);
  }, 60_000);
});

describe('WebSocket tracker, bad input', () => {
  it('answers each malformed message with a failure reason, closes on binary and oversized frames, and serves everyone else', async () => {
    const t = await start({ ws: { max_message_bytes: 4096 } });
    const ih = bin(randomBytes(20));
    const pid = bin(randomBytes(20));
    const { ws, got } = await socket(t);
    const cases: [string, RegExp][] = [
      ['{not json', /invalid message/],
      ['[1,2]', /invalid message/],
      ['null', /invalid message/],
      [JSON.stringify({ action: 'dance' }), /unknown action/],
      [JSON.stringify({ action: 'announce', info_hash: 'short', peer_id: pid }), /info_hash must be 20 bytes/],
      [JSON.stringify({ action: 'announce', info_hash: '\u1234'.repeat(20), peer_id: pid }), /info_hash must be 20 bytes/],
      [JSON.stringify({ action: 'announce', info_hash: ih }), /missing peer_id/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, offers: [null] }), /offers must be a list/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, offers: { a: 1 } }), /offers must be a list/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, offers: [{ offer: 'sdp', offer_id: pid }] }), /offers must be a list/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, offers: Array.from({ length: 11 }, () => ({ offer: {}, offer_id: pid })) }), /too many offers/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, uploaded: '100' }), /uploaded must be/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, left: -1 }), /left must be/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, left: { nested: [{ junk: true }] } }), /left must be/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, event: 'exploded' }), /unknown event/],
      [JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, answer: { type: 'answer' }, to_peer_id: 5 }), /an answer needs/],
      [JSON.stringify({ action: 'scrape', info_hash: [ih, 7] }), /info_hash must be 20 bytes/],
      [JSON.stringify({ action: 'scrape' }), /full scrape is disabled/],
    ];
    for (const [i, [msg, reason]] of cases.entries()) {
      ws.send(msg);
      await until(`the answer to ${msg.slice(0, 60)}`, () => got.length > i, 5_000);
      expect((got[i] as Record<string, string>)['failure reason'], msg.slice(0, 60)).toMatch(reason);
    }
    // a binary frame, an oversized one: closed with a reason code
    const b = await socket(t);
    b.ws.send(new Uint8Array([1, 2, 3]));
    expect((await b.closed).code).toBe(1003);
    const big = await socket(t);
    big.ws.send(JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, pad: 'x'.repeat(5000) }));
    expect((await big.closed).code).toBe(1009);
    // the first socket, and a new one, are served as ever
    ws.send(JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pid, left: 0 }));
    await until('a good announce answered', () => got.length > cases.length, 5_000);
    expect(got[cases.length]).toMatchObject({ action: 'announce', complete: 1 });
    ws.close();
  });
});
