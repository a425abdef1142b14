import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { RF_V6 } from '../contract/replication.js';
import { entryBytes, packBatch, packForwards, unpack, type Batch, type Forwards } from './codec.js';
import { FORMAT, Keys, SLICES, sliceOf } from './keys.js';

describe('replication formats', () => {
  it('round-trips a batch and an inbox entry', () => {
    const u = new Uint8Array([1, 2, 3]);
    const b = unpack<Batch>(packBatch({ n: 'node-a', q: 7, t: 1234, u, r: new Uint8Array(0) }));
    expect(b).toMatchObject({ v: FORMAT, n: 'node-a', q: 7, t: 1234 });
    expect(Buffer.from((b as Batch).u)).toEqual(Buffer.from(u));
    const f = unpack<Forwards>(packForwards('node-b', new Uint8Array(112)));
    expect((f as Forwards).a.length).toBe(112);
  });

  it('skips, saying why, what another format or garbage holds (a rolling upgrade reads only what it knows)', () => {
    const next = new Packr({ useRecords: false }).pack({ v: FORMAT + 1, n: 'node-new', q: 1, t: 0, u: new Uint8Array(0), r: new Uint8Array(0) });
    expect(unpack(next)).toBe(`format ${FORMAT + 1} (this release reads ${FORMAT})`);
    expect(unpack(Buffer.from([0x82, 0xa1]))).toMatch(/^undecodable/); // (cut short)
    expect(unpack(new Packr().pack([1, 2]))).toBe('not a batch');
  });

  it('sizes entries by their family, and keys every slice under its own hash tag', () => {
    expect(entryBytes(new Uint8Array([0]), 0)).toBe(9 + 6);
    expect(entryBytes(new Uint8Array([RF_V6]), 0)).toBe(9 + 18);
    const k = new Keys('st');
    const tags = new Set(k.logs.map((key) => /\{(.+?)\}/.exec(key)![1]));
    expect(tags.size).toBe(SLICES);
    for (let s = 0; s < SLICES; s++) {
      const tag = /\{(.+?)\}/.exec(k.logs[s])![1];
      expect(k.sliceNodes[s]).toContain(`{${tag}}`);
      expect(k.peers(s, 'n1')).toContain(`{${tag}}`);
    }
    expect(k.nodes).toBe(`st:v${FORMAT}:nodes`);
    expect(sliceOf(new Uint8Array([0xf3]), 0)).toBe(15);
  });
});
