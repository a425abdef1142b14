import * as v from 'valibot';
import { PR, SW } from '../../shards/layout.js';
import { SwarmStore } from '../../shards/swarm-store.js';
import { type Api, InfoHash, intParam, notFound } from '../api.js';
import type { TrackerView } from '../context.js';

// A live swarm as its shard holds it, read straight from the shard's shared memory (no
// message to the shard, no effect on announces). The shard keeps writing meanwhile, so
// a peer in the middle of a move may be missing or shown twice: this is a view for people.

const Peer = v.object({
  peer_id: v.pipe(v.string(), v.description('20 bytes as hex')),
  client: v.pipe(v.string(), v.description('printable prefix of the peer_id, e.g. -qB4630-')),
  ip: v.string(),
  port: v.number(),
  seeder: v.boolean(),
  user_id: v.nullable(v.number()),
  uploaded: v.number(),
  downloaded: v.number(),
  left: v.number(),
  seconds_since_announce: v.number(),
});
const Swarm = v.object({ info_hash: v.string(), shard: v.number(), seeders: v.number(), leechers: v.number(), completed: v.number(), peers: v.array(Peer) });

function ipText(a: Uint8Array, at: number, bytes: number): string {
  if (bytes === 6) return `${a[at]}.${a[at + 1]}.${a[at + 2]}.${a[at + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[at + i] << 8) | a[at + i + 1]).toString(16));
  return groups.join(':');
}

export function swarmRoutes(api: Api, view: TrackerView): void {
  api.add({
    method: 'get', path: '/swarms/:info_hash', tag: 'swarms', summary: 'Peers of a torrent as the tracker holds them now (seeders first)',
    params: v.object({ info_hash: InfoHash }),
    query: v.object({ limit: v.optional(intParam(1, 10_000), '200') }),
    response: Swarm,
    async handler({ params, query }) {
      const hash = Buffer.from(params.info_hash, 'hex');
      const pool = view.pool;
      const shard = pool.shardOf(hash, 0);
      // views over the buffers as they are now (tables grow by replacing their views)
      const store = new SwarmStore(pool.shards[shard].memory, true);
      const swarm = store.findSwarm(hash, 0);
      if (swarm < 0) throw notFound(`swarm ${params.info_hash}`);
      const pu8 = store.peers.u8;
      const pdv = store.peers.dv;
      const now = pool.now();
      const peers: v.InferOutput<typeof Peer>[] = [];
      store.forEachPeer(swarm, query.limit, (p, addr, at, bytes, seeder) => {
        const r = p * PR.SIZE;
        const id = Buffer.from(pu8.subarray(r + PR.PEER_ID, r + PR.PEER_ID + 20));
        const user = pdv.getUint32(r + PR.USER, true);
        peers.push({
          peer_id: id.toString('hex'),
          client: /^[\x20-\x7e]*/.exec(id.toString('latin1').slice(0, 8))![0],
          ip: ipText(addr, at, bytes),
          port: (addr[at + bytes - 2] << 8) | addr[at + bytes - 1],
          seeder,
          user_id: user === 0 ? null : user,
          uploaded: pdv.getFloat64(r + PR.UPLOADED, true),
          downloaded: pdv.getFloat64(r + PR.DOWNLOADED, true),
          left: pdv.getFloat64(r + PR.LEFT, true),
          seconds_since_announce: Math.max(0, now - pdv.getUint32(r + PR.LAST_SEEN, true)),
        });
      });
      return {
        info_hash: params.info_hash.toLowerCase(),
        shard,
        seeders: store.seeders(swarm),
        leechers: store.leechers(swarm),
        completed: store.swarms.dv.getUint32(swarm * SW.SIZE + SW.COMPLETED, true),
        peers,
      };
    },
  });
}
