
// A single-producer single-consumer byte ring in a SharedArrayBuffer.
//
// Layout: a 128-byte header (consumer position on line 0, producer position on line 1),
// then `capacity` data bytes (a power of two). Positions are byte counters that wrap at
// 2^32; the data offset of a position is `pos & mask`.
//
// A record is an 8-byte header (u32 payload length) followed by the payload, padded to a
// multiple of 8 so every payload starts 8-aligned. A record never straddles the end of the
// data area: when it would not fit, the producer writes a WRAP marker and starts again at
// offset 0. The producer may reserve several records and publish them with one commit()
// (one Atomics.store of the tail): that is how a batch crosses threads with one release.
//
// Memory ordering: the producer writes the payload with plain stores and publishes with
// Atomics.store(tail); the consumer reads Atomics.load(tail) before reading payloads, and
// publishes Atomics.store(head) only after it is done with them. Atomics are sequentially
// consistent, which orders the plain accesses around them.

export const RING_HEAD = 0; // Int32 index: consumer position (bytes, wraps at 2^32)
export const RING_TAIL = 16; // Int32 index: producer position, on its own cache line
export const RING_HEADER_BYTES = 128;

const WRAP = 0xffffffff;
const REC_HEADER = 8;

export function ringBytes(capacity: number): number {
  return RING_HEADER_BYTES + capacity;
}

export class ByteRing {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  private readonly i32: Int32Array;
  private readonly capacity: number;
  private readonly mask: number;
  // producer side
  private wpos = 0;
  private lastPos = 0; // position of the last reserved record (for shrinkLast)
  // consumer side
  private rpos = 0;
  private rend = 0;
  /** Payload length of the record returned by the last next(). */
  len = 0;

  constructor(sab: SharedArrayBuffer) {
    const capacity = sab.byteLength - RING_HEADER_BYTES;
    if (capacity <= 0 || (capacity & (capacity - 1)) !== 0) throw new Error(`ring capacity ${capacity} is not a power of two`);
    this.sab = sab;
    this.u8 = new Uint8Array(sab);
    this.dv = new DataView(sab);
    this.i32 = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.wpos = Atomics.load(this.i32, RING_TAIL) >>> 0;
    this.rpos = Atomics.load(this.i32, RING_HEAD) >>> 0;
    this.rend = this.rpos;
  }

  static create(capacity: number): ByteRing {
    return new ByteRing(new SharedArrayBuffer(ringBytes(capacity)));
  }

  /** Largest payload a record may carry. */
  get maxPayload(): number {
    return (this.capacity >> 1) - REC_HEADER;
  }

  // ----- producer -----

  /**
   * Reserve a record of `len` payload bytes. Returns the absolute byte offset of the
   * payload in `u8`/`dv`, or -1 when the ring has no room (the caller answers "busy").
   * Nothing is visible to the consumer until commit().
   */
  reserve(len: number): number {
    const need = REC_HEADER + ((len + 7) & ~7);
    const head = Atomics.load(this.i32, RING_HEAD) >>> 0;
    let pos = this.wpos;
    const off = pos & this.mask;
    const toEnd = this.capacity - off;
    const skip = toEnd < need ? toEnd : 0;
    if (((pos - head) >>> 0) + skip + need > this.capacity) return -1;
    if (skip !== 0) {
      this.dv.setUint32(RING_HEADER_BYTES + off, WRAP, true);
      pos = (pos + skip) >>> 0;
    }
    const at = RING_HEADER_BYTES + (pos & this.mask);
    this.dv.setUint32(at, len, true);
    this.lastPos = pos;
    this.wpos = (pos + need) >>> 0;
    return at + REC_HEADER;
  }

  /** True when a record of `len` payload bytes would fit now, wherever it lands. */
  hasRoom(len: number): boolean {
    const need = REC_HEADER + ((len + 7) & ~7);
    const used = (this.wpos - (Atomics.load(this.i32, RING_HEAD) >>> 0)) >>> 0;
    return used + need + need <= this.capacity; // a wrap can waste up to `need` bytes
  }

  /** Cut the last reserved (uncommitted) record down to `len` payload bytes. */
  shrinkLast(len: number): void {
    this.dv.setUint32(RING_HEADER_BYTES + (this.lastPos & this.mask), len, true);
    this.wpos = (this.lastPos + REC_HEADER + ((len + 7) & ~7)) >>> 0;
  }

  /** Where the next reservation goes; rewind() to it drops what is reserved after. */
  mark(): number {
    return this.wpos;
  }

  /** Drop the records reserved since `mark` (uncommitted ones only: a mark taken since the last commit). */
  rewind(mark: number): void {
    this.wpos = mark;
  }

  /** Publish every record reserved since the last commit. Returns true if any was. */
  commit(): boolean {
    const prev = Atomics.load(this.i32, RING_TAIL) >>> 0;
    if (prev === this.wpos) return false;
    Atomics.store(this.i32, RING_TAIL, this.wpos | 0);
    return true;
  }

  // ----- consumer -----

  /**
   * Offset of the next record's payload (its length in `len`), or -1 when the ring is
   * empty. The record stays valid until release().
   */
  next(): number {
    if (this.rpos === this.rend) {
      this.rend = Atomics.load(this.i32, RING_TAIL) >>> 0;
      if (this.rpos === this.rend) return -1;
    }
    let off = this.rpos & this.mask;
    let len = this.dv.getUint32(RING_HEADER_BYTES + off, true);
    if (len === WRAP) {
      this.rpos = (this.rpos + (this.capacity - off)) >>> 0;
      off = 0;
      len = this.dv.getUint32(RING_HEADER_BYTES, true);
    }
    this.len = len;
    this.rpos = (this.rpos + REC_HEADER + ((len + 7) & ~7)) >>> 0;
    return RING_HEADER_BYTES + off + REC_HEADER;
  }

  /** Read again from the last release(): the records read since are handed out once more. */
  unread(): void {
    this.rpos = Atomics.load(this.i32, RING_HEAD) >>> 0;
  }

  /** Hand the space of every record read so far back to the producer. */
  release(): void {
    Atomics.store(this.i32, RING_HEAD, this.rpos | 0);
  }

  /** True when a consumer would find nothing (reads the producer's published tail). */
  isEmpty(): boolean {
    return this.rpos === (Atomics.load(this.i32, RING_TAIL) >>> 0);
  }

  /** Bytes published and not yet released (queue depth, for metrics). */
  depth(): number {
    return ((Atomics.load(this.i32, RING_TAIL) >>> 0) - (Atomics.load(this.i32, RING_HEAD) >>> 0)) >>> 0;
  }

  /**
   * Drop everything queued (used by the supervisor after a shard died: no thread is
   * consuming). Both ends continue from the producer's position.
   */
  reset(): void {
    const tail = Atomics.load(this.i32, RING_TAIL) >>> 0;
    this.wpos = tail;
    this.rpos = tail;
    this.rend = tail;
    Atomics.store(this.i32, RING_HEAD, tail | 0);
  }
}
