// Where the cluster's state lives in Redis. Every key of one slice of the info_hash space
// carries the slice as its hash tag, so the commands and transactions of one slice go to
// one Redis Cluster slot; the version in every key lets a later format live beside this
// one during a rolling upgrade.
//
//   <prefix>:v1:nodes                    sorted set: node id → lease expiry (Redis time, ms)
//   <prefix>:v1:{s<NN>}:n:<node>         hash: a node's peers of slice NN (info_hash+peer_id → entry)
//   <prefix>:v1:{s<NN>}:nodes            set: the nodes that wrote a hash of slice NN
//   <prefix>:v1:{s<NN>}:log              stream: batches of changes to slice NN, trimmed by age
//   <prefix>:v1:inbox:{<node>}           stream: announces other nodes received for a node's peers
//
// Every key expires: node hashes and inboxes a few leases after their node stops renewing
// them, logs and slice sets a few leases after the last write.

export const FORMAT = 1;
/** Slices of the info_hash space (its first byte's high nibble): fixed by the format. */
export const SLICES = 16;

export function sliceOf(u8: Uint8Array, off: number): number {
  return u8[off] >>> 4;
}

export class Keys {
  private readonly base: string;
  readonly nodes: string;
  readonly logs: string[] = [];
  readonly sliceNodes: string[] = [];

  constructor(prefix: string) {
    this.base = `${prefix}:v${FORMAT}`;
    this.nodes = `${this.base}:nodes`;
    for (let s = 0; s < SLICES; s++) {
      this.logs.push(`${this.slice(s)}:log`);
      this.sliceNodes.push(`${this.slice(s)}:nodes`);
    }
  }

  private slice(s: number): string {
    return `${this.base}:{s${s.toString().padStart(2, '0')}}`;
  }

  peers(s: number, node: string): string {
    return `${this.slice(s)}:n:${node}`;
  }

  inbox(node: string): string {
    return `${this.base}:inbox:{${node}}`;
  }
}
