import { randomInt } from 'node:crypto';

// BEP 15 connection ids without per-connection state: a keyed hash (HalfSipHash-2-4, a
// PRF built from 32-bit additions, rotations and xors, cheap in JavaScript) of the client's
// address under a key that changes every window. An id is accepted under the current key
// or the previous one, so it lives between one and two windows (BEP 15 asks for at least
// a minute of use after the connect answer). Nobody can make a valid id for an address
// whose answers they cannot read, and an id taken from one address is worthless from
// another.

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

const out = new Int32Array(2);
let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function round(): void {
  v0 = (v0 + v1) | 0;
  v1 = rotl(v1, 5) ^ v0;
  v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0;
  v3 = rotl(v3, 8) ^ v2;
  v0 = (v0 + v3) | 0;
  v3 = rotl(v3, 7) ^ v0;
  v2 = (v2 + v1) | 0;
  v1 = rotl(v1, 13) ^ v2;
  v2 = rotl(v2, 16);
}

function absorb(m: number): void {
  v3 ^= m;
  round();
  round();
  v0 ^= m;
}

/**
 * HalfSipHash-2-4 with 64-bit output of the 16 address bytes at u8[off] under key
 * (k0, k1). Result in `out` (two words).
 */
function halfSip(k0: number, k1: number, u8: Uint8Array, off: number): void {
  v0 = k0;
  v1 = k1 ^ 0xee;
  v2 = 0x6c796765 ^ k0;
  v3 = 0x74656462 ^ k1;
  for (let i = 0; i < 16; i += 4) absorb(u8[off + i] | (u8[off + i + 1] << 8) | (u8[off + i + 2] << 16) | (u8[off + i + 3] << 24));
  const b = 16 << 24;
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xee;
  round();
  round();
  round();
  round();
  out[0] = v1 ^ v3;
  v1 ^= 0xdd;
  round();
  round();
  round();
  round();
  out[1] = v1 ^ v3;
}

function randomWord(): number {
  return randomInt(0, 2 ** 32) | 0;
}

export class ConnectionIds {
  private keys = new Int32Array(4); // [current k0, k1, previous k0, k1]
  // No window yet. Not -1: the server's clock starts at 0, and window 0 would then count as
  // "the next one" and keep the all-zero initial key as the previous (accepted) key.
  private window = Number.NEGATIVE_INFINITY;

  /** @param windowSeconds how long one key is the current one */
  constructor(private readonly windowSeconds = 120) {}

  /** Move to the key of the window holding `now` (seconds); called before every use. */
  private roll(now: number): void {
    const w = Math.floor(now / this.windowSeconds);
    if (w === this.window) return;
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
    return out[0] === hi && out[1] === lo;
  }
}
