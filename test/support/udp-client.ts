// A BEP 15 client for the tests: one socket, answers matched by transaction id, and the
// packets and answers of announce.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { expect } from 'vitest';

/** A UDP tracker client: one socket, answers matched by transaction id. */
export class UdpClient {
  private readonly sock: Socket;
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  readonly received: Buffer[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly local = host.includes(':') ? '::1' : '127.0.0.1',
  ) {
    this.sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    this.sock.on('message', (m) => {
      this.received.push(m);
      if (m.length >= 8) this.waiting.get(m.readUInt32BE(4))?.(m);
    });
  }

  async open(): Promise<void> {
    await new Promise<void>((r) => this.sock.bind(0, this.local, () => r()));
  }

  close(): void {
    this.sock.close();
  }

  sendRaw(b: Buffer): void {
    this.sock.send(b, this.port, this.host);
  }

  /** Send a packet whose bytes 12..16 are its transaction id and await the answer. */
  request(b: Buffer, timeoutMs = 2000): Promise<Buffer> {
    const tid = b.readUInt32BE(12);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(tid);
        reject(new Error(`no answer to transaction ${tid}`));
      }, timeoutMs);
      this.waiting.set(tid, (m) => {
        clearTimeout(timer);
        this.waiting.delete(tid);
        resolve(m);
      });
      this.sendRaw(b);
    });
  }

  async connect(): Promise<Buffer> {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(0x417, 0);
    b.writeUInt32BE(0x27101980, 4);
    b.writeUInt32BE(0, 8);
    b.writeUInt32BE(randomBytes(4).readUInt32BE(0), 12);
    const a = await this.request(b);
    expect(a.length).toBe(16);
    expect(a.readUInt32BE(0)).toBe(0);
    expect(a.readUInt32BE(4)).toBe(b.readUInt32BE(12));
    return a.subarray(8, 16);
  }
}

export interface UdpAnnounce {
  conn: Buffer;
  infoHash: Uint8Array;
  peerId: Uint8Array;
  port: number;
  left?: number;
  event?: number;
  numwant?: number;
  options?: Buffer;
  action?: number;
  key?: number;
  uploaded?: number;
  downloaded?: number;
}

export function announcePacket(a: UdpAnnounce): Buffer {
  const b = Buffer.alloc(98 + (a.options?.length ?? 0));
  Buffer.from(a.conn).copy(b, 0);
  b.writeUInt32BE(a.action ?? 1, 8);
  b.writeUInt32BE(randomBytes(4).readUInt32BE(0), 12);
  Buffer.from(a.infoHash).copy(b, 16);
  Buffer.from(a.peerId).copy(b, 36);
  b.writeBigUInt64BE(BigInt(a.downloaded ?? 0), 56);
  b.writeBigUInt64BE(BigInt(a.left ?? 1000), 64);
  b.writeBigUInt64BE(BigInt(a.uploaded ?? 0), 72);
  b.writeUInt32BE(a.event ?? 0, 80);
  b.writeUInt32BE(0, 84);
  b.writeUInt32BE(a.key ?? 0x5eed, 88);
  b.writeInt32BE(a.numwant ?? -1, 92);
  b.writeUInt16BE(a.port, 96);
  a.options?.copy(b, 98);
  return b;
}

export function parseAnnounce(m: Buffer, v6 = false) {
  expect(m.readUInt32BE(0), m.subarray(8).toString()).toBe(1);
  const size = v6 ? 18 : 6;
  expect((m.length - 20) % size).toBe(0);
  const peers: string[] = [];
  for (let i = 20; i < m.length; i += size) {
    peers.push(v6 ? `[${m.subarray(i, i + 16).toString('hex')}]:${m.readUInt16BE(i + 16)}` : `${m[i]}.${m[i + 1]}.${m[i + 2]}.${m[i + 3]}:${m.readUInt16BE(i + 4)}`);
  }
  return { interval: m.readUInt32BE(8), leechers: m.readUInt32BE(12), seeders: m.readUInt32BE(16), peers };
}

export function errorText(m: Buffer): string {
  expect(m.readUInt32BE(0)).toBe(3);
  return m.subarray(8).toString();
}

