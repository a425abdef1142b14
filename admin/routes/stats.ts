import * as v from 'valibot';
import { PersistenceStats } from '../../contract/persistence-stats.js';
import type { Api } from '../api.js';
import type { TrackerView } from '../context.js';

// Tracker-wide figures, read from shared memory (shard control blocks, the persistence
// thread's counters): nothing is asked of the threads.

const Stats = v.object({
  shards: v.number(),
  swarms: v.number(),
  peers: v.object({ seeders: v.number(), leechers: v.number(), ipv6: v.number() }),
  registry: v.object({ users: v.number(), torrents: v.number(), bans: v.number() }),
  persistence: v.nullable(
    v.object({
      database_up: v.boolean(),
      journal_bytes: v.number(),
      pending_batches: v.number(),
      records_committed: v.number(),
      dead_letters: v.number(),
      lag_seconds: v.number(),
    }),
  ),
});

function shardTotals(view: TrackerView): { swarms: number; seeders: number; leechers: number; ipv6: number } {
  const t = { swarms: 0, seeders: 0, leechers: 0, ipv6: 0 };
  for (let i = 0; i < view.shards.count; i++) {
    const s = view.shards.stats(i);
    t.swarms += s.swarms;
    t.seeders += s.seeders;
    t.leechers += s.leechers;
    t.ipv6 += s.peersV6;
  }
  return t;
}

export function statsRoutes(api: Api, view: TrackerView): void {
  api.add({
    method: 'get', path: '/stats', tag: 'stats', summary: 'Swarms, peers, registry sizes and persistence state', response: Stats,
    async handler() {
      const t = shardTotals(view);
      const ps = view.persistence?.stats;
      const oldest = ps?.[PersistenceStats.OLDEST_PENDING] ?? 0;
      return {
        shards: view.shards.count,
        swarms: t.swarms,
        peers: { seeders: t.seeders, leechers: t.leechers, ipv6: t.ipv6 },
        registry: { users: view.registry.userCount, torrents: view.registry.registeredTorrents, bans: view.registry.banCount },
        persistence: ps
          ? {
              database_up: ps[PersistenceStats.DB_UP] === 1,
              journal_bytes: ps[PersistenceStats.JOURNAL_BYTES],
              pending_batches: ps[PersistenceStats.PENDING_BATCHES],
              records_committed: ps[PersistenceStats.RECORDS_COMMITTED],
              dead_letters: ps[PersistenceStats.DEAD_LETTERS],
              lag_seconds: oldest > 0 ? Math.max(0, Date.now() / 1000 - oldest) : 0,
            }
          : null,
      };
    },
  });
}
