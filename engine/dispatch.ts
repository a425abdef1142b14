import type { AnswerSink, ShardPool } from '../shards/pool.js';
import { AnnounceAnswer, AnnounceRequest, KIND_SCRAPE, ScrapeAnswer, SCRAPE_ENTRY, ScrapeRequest } from '../contract/requests.js';
import type { ByteRing } from '../contract/ring.js';
import { AddressTags } from './net/halfsip.js';
import type { Limits } from './policy/limits.js';
import { PendingTable } from './pending.js';

// Between the protocol frontends (HTTP, UDP) and the shards: queues request records into
// the owning shard's ring under a pending slot, fans scrapes out to every shard they touch
// and merges the parts, and hands each answer back to the frontend that asked.

/** A protocol frontend: what it needs to answer its clients. */
export interface Frontend {
  /**
   * An announce answer record for `item`. The slot is released, but nothing can take it
   * before this returns, so per-slot data the frontend keeps is still valid.
   */
  announced(item: unknown, tag: number, slot: number, ring: ByteRing, off: number): void;
  /** Every part of a scrape is in: job.counts holds (seeders, completed, leechers) per hash. */
  scraped(job: ScrapeJob): void;
  /** The shard holding the request died before answering. */
  lost(item: unknown, tag: number, slot: number): void;
}

/** A scrape spread over the shards owning its info_hashes. */
export interface ScrapeJob {
  readonly item: unknown;
  readonly owner: number;
  readonly hashes: Uint8Array; // count × 20 bytes, in request order
  readonly count: number;
  readonly counts: Uint32Array; // (seeders, completed, leechers) per hash
  parts: number; // shard answers still missing
  readonly partIndex: Map<number, Uint16Array>; // request id → hash indexes sent with it
  done: boolean;
}

/** The tag of scrape parts (frontends' announce tags stay below it). */
export const SCRAPE_TAG = 0xff;

export class Dispatch implements AnswerSink {
  readonly pending: PendingTable<unknown>;
  /** Tags of client addresses for AnnounceRequest.SOURCE, under one key for every frontend. */
  readonly addressTags = new AddressTags();
  /** What each address and passkey may take (null: no limits, as in unit tests). */
  limits: Limits | null = null;
  private readonly frontends: Frontend[] = [];

  constructor(
    private readonly pool: ShardPool,
    maxInflight: number,
  ) {
    this.pending = new PendingTable<unknown>(maxInflight);
  }

  /** Register a frontend; returns the owner id it passes with its requests. */
  register(fe: Frontend): number {
    this.frontends.push(fe);
    return this.frontends.length - 1;
  }

  /**
   * Queue the announce record `rec` (AnnounceRequest layout, REQ_ID filled in here) for the shard of
   * its info_hash. Returns the pending slot, or -1 when the tracker is saturated (no slot
   * or no ring space): the caller answers "busy".
   */
  submitAnnounce(rec: Uint8Array, dv: DataView, item: unknown, tag: number, owner: number, client = -1): number {
    const shard = this.pool.shardOf(rec, AnnounceRequest.INFO_HASH);
    const slot = this.pending.acquire(item, shard, tag, owner, client);
    if (slot < 0) return -1;
    const at = this.pool.reserve(shard, AnnounceRequest.SIZE);
    if (at < 0) {
      this.pending.release(slot);
      return -1;
    }
    dv.setUint32(AnnounceRequest.REQ_ID, this.pending.idOf(slot), true);
    this.pool.requestRing(shard).u8.set(rec, at);
    this.pool.queued(shard);
    // kept per slot rather than in the record: the answer record carries neither
    this.pending.since[slot] = performance.now();
    this.pending.events[slot] = rec[AnnounceRequest.EVENT];
    return slot;
  }

  /**
   * Queue a scrape of `count` info_hashes (20 bytes each at hashes[0...]), one request per
   * shard involved. Returns the job, or null when the tracker is saturated.
   */
  submitScrape(hashes: Uint8Array, count: number, item: unknown, owner: number, client = -1): ScrapeJob | null {
    const byShard = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      const shard = this.pool.shardOf(hashes, i * 20);
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push(i);
    }
    const job: ScrapeJob = {
      item,
      owner,
      hashes: hashes.slice(0, count * 20),
      count,
      counts: new Uint32Array(count * 3),
      parts: byShard.size,
      partIndex: new Map(),
      done: false,
    };
    const slots: number[] = [];
    for (const [shard, list] of byShard) {
      const slot = this.pending.acquire(job, shard, SCRAPE_TAG, owner, client);
      const at = slot < 0 ? -1 : this.pool.reserve(shard, ScrapeRequest.HASHES + list.length * 20);
      if (at < 0) {
        if (slot >= 0) this.pending.release(slot);
        for (const s of slots) this.pending.release(s); // parts already queued answer into nothing
        return null;
      }
      slots.push(slot);
      const id = this.pending.idOf(slot);
      const ring = this.pool.requestRing(shard);
      ring.u8[at + ScrapeRequest.KIND] = KIND_SCRAPE;
      ring.dv.setUint16(at + ScrapeRequest.COUNT, list.length, true);
      ring.dv.setUint32(at + ScrapeRequest.REQ_ID, id, true);
      for (let k = 0; k < list.length; k++) ring.u8.set(job.hashes.subarray(list[k] * 20, list[k] * 20 + 20), at + ScrapeRequest.HASHES + k * 20);
      job.partIndex.set(id, Uint16Array.from(list));
      this.pool.queued(shard);
    }
    return job;
  }

  // ------------------------------------------------------------------ AnswerSink

  announce(ring: ByteRing, off: number): void {
    const slot = this.pending.slotOf(ring.dv.getUint32(off + AnnounceAnswer.REQ_ID, true));
    if (slot < 0) return; // client gone, or failed after a shard restart and reused
    const item = this.pending.item(slot);
    const tag = this.pending.tags[slot];
    const owner = this.pending.owners[slot];
    this.pending.release(slot);
    this.frontends[owner].announced(item, tag, slot, ring, off);
  }

  scrape(ring: ByteRing, off: number): void {
    const id = ring.dv.getUint32(off + ScrapeAnswer.REQ_ID, true);
    const slot = this.pending.slotOf(id);
    if (slot < 0) return;
    const job = this.pending.item(slot) as ScrapeJob;
    this.pending.release(slot);
    const list = job.partIndex.get(id)!;
    const n = Math.min(list.length, ring.dv.getUint16(off + ScrapeAnswer.COUNT, true));
    for (let k = 0; k < n; k++) {
      const e = off + ScrapeAnswer.FILES + k * SCRAPE_ENTRY;
      const i = list[k] * 3;
      job.counts[i] = ring.dv.getUint32(e, true);
      job.counts[i + 1] = ring.dv.getUint32(e + 4, true);
      job.counts[i + 2] = ring.dv.getUint32(e + 8, true);
    }
    if (--job.parts > 0 || job.done) return;
    job.done = true;
    this.frontends[job.owner].scraped(job);
  }

  shardLost(shard: number): void {
    for (const slot of this.pending.slotsOfShard(shard)) {
      const item = this.pending.item(slot);
      const tag = this.pending.tags[slot];
      const owner = this.pending.owners[slot];
      this.pending.release(slot);
      if (tag === SCRAPE_TAG) {
        const job = item as ScrapeJob;
        if (job.done) continue;
        job.done = true;
        this.frontends[owner].lost(job.item, tag, slot);
      } else {
        this.frontends[owner].lost(item, tag, slot);
      }
    }
  }
}
