import * as v from 'valibot';
import { type Api, InfoHash, intParam, notFound } from '../api.js';
import type { TrackerView } from '../context.js';

// A live swarm as its shard holds it, read from the shard's shared memory (the view says
// how: no message to the shard, no effect on announces; a peer in the middle of a move may
// be missing or shown twice).

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

export function swarmRoutes(api: Api, view: TrackerView): void {
  api.add({
    method: 'get', path: '/swarms/:info_hash', tag: 'swarms', summary: 'Peers of a torrent as the tracker holds them now (seeders first)',
    params: v.object({ info_hash: InfoHash }),
    query: v.object({ limit: v.optional(intParam(1, 10_000), '200') }),
    response: Swarm,
    async handler({ params, query }) {
      const s = view.shards.swarm(Buffer.from(params.info_hash, 'hex'), query.limit);
      if (s === undefined) throw notFound(`swarm ${params.info_hash}`);
      return {
        info_hash: params.info_hash.toLowerCase(),
        shard: s.shard,
        seeders: s.seeders,
        leechers: s.leechers,
        completed: s.completed,
        peers: s.peers.map((p) => {
          const id = Buffer.from(p.peerId);
          return {
            peer_id: id.toString('hex'),
            client: /^[\x20-\x7e]*/.exec(id.toString('latin1').slice(0, 8))![0],
            ip: p.ip,
            port: p.port,
            seeder: p.seeder,
            user_id: p.user === 0 ? null : p.user,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
            seconds_since_announce: p.secondsSinceAnnounce,
          };
        }),
      };
    },
  });
}
