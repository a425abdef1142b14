// A bencode writer into one preallocated buffer, for answers on the hot path: no
// intermediate objects, no strings for binary data, keys written pre-encoded. Callers write
// dictionary keys in sorted order (BEP 3); the tests check the output against the
// `bencode` package.

const MINUS = 0x2d;
const ZERO = 0x30;
const COLON = 0x3a;

export class BencodeWriter {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  /** Pre-encoded bytes (a key, a literal 'd', 'l', 'e'). */
  raw(bytes: Uint8Array): this {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  byte(c: number): this {
    this.buf[this.pos++] = c;
    return this;
  }

  /** Decimal digits of a non-negative or negative integer (no 'i'/'e'). */
  digits(n: number): this {
    const b = this.buf;
    if (n < 0) {
      b[this.pos++] = MINUS;
      n = -n;
    }
    if (n < 10) {
      b[this.pos++] = ZERO + n;
      return this;
    }
    let len = 0;
    for (let t = n; t >= 1; t = Math.floor(t / 10)) len++;
    let p = this.pos + len;
    this.pos = p;
    while (n >= 1) {
      const q = Math.floor(n / 10);
      b[--p] = ZERO + (n - q * 10);
      n = q;
    }
    return this;
  }

  /** i<n>e */
  int(n: number): this {
    this.buf[this.pos++] = 0x69;
    this.digits(n);
    this.buf[this.pos++] = 0x65;
    return this;
  }

  /** <len>:<bytes> from src[off, off + len). */
  bytes(src: Uint8Array, off: number, len: number): this {
    this.digits(len);
    this.buf[this.pos++] = COLON;
    this.buf.set(src.subarray(off, off + len), this.pos);
    this.pos += len;
    return this;
  }

  /** Length prefix of a byte string whose bytes the caller writes next (at `pos`). */
  strHeader(len: number): this {
    this.digits(len);
    this.buf[this.pos++] = COLON;
    return this;
  }

  /** The bytes written so far (a view, valid until the next reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Encode a key or literal once, e.g. `lit('8:complete')`. */
export function lit(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
