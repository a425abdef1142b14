// Requests uWebSockets.js cannot parse are answered (400, 431, 505) or closed at once: a
// connection left silent until its idle timeout would be a slot an attacker holds for free.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, failure, get, hash, peerId, spawnTracker, startTestTracker } from './helpers.js';

let t: Tracker;
beforeAll(async () => {
  t = await startTestTracker();
});
afterAll(async () => {
  await t?.close();
});

const headers300 = Array.from({ length: 300 }, (_, i) => `X-Header-${i}: value\r\n`).join('');
const CASES: Array<[string, string | Buffer]> = [
  ['random bytes (a TLS hello)', Buffer.from('16030100a5010000a10303' + 'ab'.repeat(40), 'hex')],
  ['an HTTP/0.9 request line', 'GET /announce\r\n\r\n'],
  ['HTTP/9.9', 'GET /announce HTTP/9.9\r\nHost: x\r\n\r\n'],
  ['HTTP/1.0', 'GET /announce HTTP/1.0\r\nHost: x\r\n\r\n'],
  ['a header line without a colon', 'GET /announce HTTP/1.1\r\nHost x\r\n\r\n'],
  ['bare LF line endings', 'GET /announce HTTP/1.1\nHost: x\n\n'],
  ['a NUL in the target', 'GET /ann\u0000ounce HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['300 headers', `GET /announce HTTP/1.1\r\n${headers300}\r\n`],
  ['a target without the leading /', 'GET x/announce HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['an absolute-form target', 'GET http://127.0.0.1/announce HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['a request line longer than any query allowed', `GET /announce?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
];

/** Send `bytes` on a new connection; resolves with what came back and when it ended. */
function exchange(bytes: string | Buffer): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(t.httpPort, '127.0.0.1');
    let reply = '';
    let start = 0;
    s.on('connect', () => {
      start = performance.now();
      s.write(bytes);
    });
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', () => {}); // a reset after the answer is fine
    s.on('close', () => resolve({ reply, ms: performance.now() - start }));
    setTimeout(() => {
      s.destroy();
      reject(new Error('no answer and no close within 3 s'));
    }, 3000);
  });
}

describe('malformed HTTP requests', () => {
  it.each(CASES)('%s: answered with an error status and closed within a second', async (_name, bytes) => {
    const { reply, ms } = await exchange(bytes);
    expect(reply).toMatch(/^HTTP\/1\.1 (400|431|505) /);
    expect(ms).toBeLessThan(1000);
  });

  it('leave the tracker serving', async () => {
    await Promise.all(CASES.map(([, b]) => exchange(b)));
    const r = await get(t.httpPort, announcePath({ infoHash: hash(), peerId: peerId(), port: 1 }));
    expect(failure(r.body)).toBeUndefined();
  });
});

describe('the request line limit of a started tracker', () => {
  it('follows http.max_query_bytes: a longer query gets its failure reason, far longer 431', async () => {
    const proc = await spawnTracker({ SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_REGISTRY__FILE: '', SHARDTRACK_TRACKER__PRIVATE: 'false', SHARDTRACK_HTTP__MAX_QUERY_BYTES: '20000' });
    try {
      const path = (pad: number) => `${announcePath({ infoHash: hash(), peerId: peerId(), port: 1 })}&pad=${'x'.repeat(pad)}`;
      // within http.max_query_bytes (beyond uWS's own default of 4 KiB): served
      expect(failure((await get(proc.port, path(15_000))).body)).toBeUndefined();
      // beyond it, within the room main.js gave uWS: our failure reason
      expect(failure((await get(proc.port, path(21_000))).body)).toBe('request too long');
      // beyond that: uWS answers 431 itself
      expect((await get(proc.port, path(30_000))).status).toBe(431);
    } finally {
      await proc.stop();
    }
  }, 30_000);
});
