import { randomInt } from 'node:crypto';

// HalfSipHash-2-4 with 64-bit output over a 16-byte address: a PRF built from 32-bit
// additions, rotations and xors, cheap in JavaScript. Keyed with a secret, its output for
// an address cannot be predicted or forged by anyone who does not know the key.

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** The two words of the last halfSip() result. */
export const out = new Int32Array(2);
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
export function halfSip(k0: number, k1: number, u8: Uint8Array, off: number): void {
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

/** A random 32-bit key word (as a signed int, the way halfSip takes it). */
export function randomWord(): number {
  return randomInt(0, 2 ** 32) | 0;
}

/**
 * A secret 32-bit tag of a client's address (16 bytes, IPv4-mapped for IPv4): what a peer
 * record keeps of the address its announces come from, so that only that address (or the
 * client's key) can update or stop it. One random key per process; unpredictable without it.
 */
export class AddressTags {
  private readonly k0 = randomWord();
  private readonly k1 = randomWord();

  tag(addr: Uint8Array, off: number): number {
    halfSip(this.k0, this.k1, addr, off);
    return out[0] >>> 0;
  }
}
