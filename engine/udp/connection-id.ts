import { createHmac } from 'node:crypto';
import { halfSip, out, randomWord } from '../net/halfsip.js';

// BEP 15 connection ids without per-connection state: a keyed hash (HalfSipHash-2-4,
// net/halfsip.ts) of the client's address under a key that changes every window. An id is
// accepted under the current key or the previous one, so it lives between one and two
// windows (BEP 15 asks for at least a minute of use after the connect answer). Nobody can make a valid id for an address
// whose answers they cannot read, and an id taken from one address is worthless from
// another.
//
// With a shared secret (udp.connection_id_secret) the keys are not random but derived from
// it and the window's number on the wall clock, so every node behind one UDP address
// (a load balancer spreading one client's packets) issues and accepts the same ids. The
// window after the current one is accepted too: another node's clock may run a little ahead.

export class ConnectionIds {
  private keys = new Int32Array(6); // [current k0, k1, previous k0, k1, next k0, k1 (shared secret only)]
  // No window yet. Not -1: were the server's clock to start at 0 (tests drive it so; the
  // tracker's starts at shards/pool.ts CLOCK_BASE), window 0 would count as "the next one"
  // and keep the all-zero initial key as the previous (accepted) key.
  private window = Number.NEGATIVE_INFINITY;

  /**
   * @param windowSeconds how long one key is the current one
   * @param secret shared by every node ('' for keys of this process alone); with one, `now`
   *   must be the wall clock (unix seconds), the same on every node
   */
  constructor(
    private readonly windowSeconds = 120,
    private readonly secret = '',
  ) {}

  /** Move to the key of the window holding `now` (seconds); called before every use. */
  private roll(now: number): void {
    const w = Math.floor(now / this.windowSeconds);
    if (w === this.window) return;
    if (this.secret !== '') {
      this.derive(w, 0);
      this.derive(w - 1, 2);
      this.derive(w + 1, 4);
      this.window = w;
      return;
    }
    if (w === this.window + 1) {
      this.keys[2] = this.keys[0];
      this.keys[3] = this.keys[1];
    } else {
      // first use, or windows skipped: the previous key must not validate anything
      this.keys[2] = randomWord();
      this.keys[3] = randomWord();
    }
    this.keys[0] = randomWord();
    this.keys[1] = randomWord();
    this.window = w;
  }

  /** The key of window `w` under the shared secret, into keys[at], keys[at + 1]. */
  private derive(w: number, at: number): void {
    const h = createHmac('sha256', this.secret).update(`shardtrack/udp-connection-id/v1/${w}`).digest();
    this.keys[at] = h.readInt32LE(0);
    this.keys[at + 1] = h.readInt32LE(4);
  }

  /**
   * Write the connection id for a client address (16 bytes, IPv4-mapped for IPv4) as 8
   * bytes at dst[at]. Bound to the address only, not the port: BEP 15 ties ids to the IP,
   * and some NATs move a client's port between packets.
   */
  issue(now: number, addr: Uint8Array, addrOff: number, dst: DataView, at: number): void {
    this.roll(now);
    halfSip(this.keys[0], this.keys[1], addr, addrOff);
    dst.setInt32(at, out[0], false);
    dst.setInt32(at + 4, out[1], false);
  }

  /** Is the 8-byte id at src[at] valid for the client address now? */
  check(now: number, addr: Uint8Array, addrOff: number, src: DataView, at: number): boolean {
    this.roll(now);
    const hi = src.getInt32(at, false);
    const lo = src.getInt32(at + 4, false);
    halfSip(this.keys[0], this.keys[1], addr, addrOff);
    if (out[0] === hi && out[1] === lo) return true;
    halfSip(this.keys[2], this.keys[3], addr, addrOff);
    if (out[0] === hi && out[1] === lo) return true;
    if (this.secret === '') return false;
    halfSip(this.keys[4], this.keys[5], addr, addrOff);
    return out[0] === hi && out[1] === lo;
  }
}
