// Requests waiting on a shard: a fixed table of slots, so the number in flight (and the
// memory they hold) is bounded by configuration. A request id is the slot number plus a
// generation in the high bits: an answer that arrives for a slot since reused (client gone,
// shard restarted) no longer matches and is dropped.

const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const GEN_LIMIT = 1 << (32 - SLOT_BITS);

export class PendingTable<T> {
  readonly capacity: number;
  private readonly items: (T | undefined)[];
  private readonly ids: Uint32Array;
  private readonly gens: Uint16Array;
  /** Per-slot byte the owner may use (answer format flags). */
  readonly tags: Uint8Array;
  readonly shards: Uint16Array;
  /** Which frontend (engine/dispatch.ts) each slot belongs to. */
  readonly owners: Uint8Array;
  /** Announces: performance.now() at submit and the request's event, for the metrics. */
  readonly since: Float64Array;
  readonly events: Uint8Array;
  /** The client (Limits address entry, -1 none) each slot counts against, and who counts. */
  readonly clients: Int32Array;
  perClient: { acquired(client: number): void; done(client: number): void } | null = null;
  private readonly free: Int32Array;
  private top: number;

  constructor(capacity: number) {
    if (capacity > SLOT_MASK + 1) throw new Error(`at most ${SLOT_MASK + 1} requests in flight`);
    this.capacity = capacity;
    this.items = new Array<T | undefined>(capacity).fill(undefined);
    this.ids = new Uint32Array(capacity);
    this.gens = new Uint16Array(capacity);
    this.tags = new Uint8Array(capacity);
    this.shards = new Uint16Array(capacity);
    this.owners = new Uint8Array(capacity);
    this.since = new Float64Array(capacity);
    this.events = new Uint8Array(capacity);
    this.clients = new Int32Array(capacity).fill(-1);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.top = capacity;
  }

  get inFlight(): number {
    return this.capacity - this.top;
  }

  /** Take a slot for `item`; returns the slot, or -1 when the table is full. */
  acquire(item: T, shard: number, tag: number, owner = 0, client = -1): number {
    if (this.top === 0) return -1;
    const slot = this.free[--this.top];
    const gen = (this.gens[slot] + 1) % GEN_LIMIT;
    this.gens[slot] = gen;
    this.ids[slot] = ((gen << SLOT_BITS) | slot) >>> 0;
    this.items[slot] = item;
    this.shards[slot] = shard;
    this.tags[slot] = tag;
    this.owners[slot] = owner;
    this.clients[slot] = client;
    if (client >= 0) this.perClient?.acquired(client);
    return slot;
  }

  /** The request id to send with the slot's record. */
  idOf(slot: number): number {
    return this.ids[slot];
  }

  /** Slot of a live request id, or -1 when it is stale. */
  slotOf(id: number): number {
    const slot = id & SLOT_MASK;
    return slot < this.capacity && this.ids[slot] === id && this.items[slot] !== undefined ? slot : -1;
  }

  item(slot: number): T | undefined {
    return this.items[slot];
  }

  /** Give the slot back; later answers for it are stale. */
  release(slot: number): void {
    if (this.items[slot] === undefined) return;
    this.items[slot] = undefined;
    this.ids[slot] = 0;
    if (this.clients[slot] >= 0) this.perClient?.done(this.clients[slot]);
    this.clients[slot] = -1;
    this.free[this.top++] = slot;
  }

  /** Slots currently waiting on `shard`. */
  slotsOfShard(shard: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.capacity; i++) if (this.items[i] !== undefined && this.shards[i] === shard) out.push(i);
    return out;
  }
}
