import postgres from 'postgres';
import { createMetrics } from '../admin/metrics.js';
import { startAdmin, type AdminServer } from '../admin/server.js';
import type { Logger } from '../contract/log.js';
import { embeddedClient } from '../persistence/embedded.js';
import type { Persistence } from '../persistence/persistence.js';
import { PG_COMMON } from '../persistence/pg.js';
import type { ShardPool } from '../shards/pool.js';
import type { Limits } from './policy/limits.js';
import type { Config } from './config.js';
import type { TrackerCounters } from './counters.js';
import type { HttpFrontend } from './http/server.js';
import type { UwsInfo } from './http/uws.js';
import type { WsStats } from './ws/server.js';
import type { Replication } from '../replication/replication.js';
import { assertPortFree } from './net/port.js';
import type { Registry } from './policy/registry.js';
import { VERSION } from './version.js';

// The admin side wired to the running tracker: admin/ declares the views it reads
// (admin/context.ts) and is handed them here, with a database client of its own.

export interface AdminParts {
  pool: ShardPool;
  registry: Registry;
  counters: TrackerCounters;
  persistence: Persistence | undefined;
  http: HttpFrontend;
  uws: UwsInfo;
  limits: Limits;
  ws: WsStats | undefined;
  replication: Replication | undefined;
}

export interface AdminSide {
  readonly server: AdminServer;
  close(): Promise<void>;
}

export async function startAdminSide(config: Config, p: AdminParts, log: Logger): Promise<AdminSide> {
  const db = config.database;
  let sql: postgres.Sql | undefined;
  if (p.persistence) {
    const common = { ...PG_COMMON, max: 4, connection: { search_path: db.schema, application_name: `shardtrack-admin/${db.schema}` } };
    const embedded = p.persistence.embeddedDb;
    sql = db.url !== '' ? postgres(db.url, common) : embedded ? postgres({ ...common, ...embeddedClient(embedded) }) : undefined;
  }
  const shared = config.admin.on_tracker_port ? p.http.app : undefined;
  try {
    if (!shared && config.admin.port !== 0) await assertPortFree(config.admin.host, config.admin.port, 'admin');
    const server = await startAdmin({
      view: { shards: p.pool, registry: p.registry, persistence: p.persistence, limits: p.limits, replication: p.replication && { stats: p.replication.stats, unreadyWhenDown: config.redis.unready_when_down } },
      host: config.admin.host,
      port: config.admin.port,
      shared,
      sql,
      version: VERSION,
      log,
      metrics: createMetrics({
        counters: p.counters,
        shards: p.pool,
        registry: p.registry,
        persistence: p.persistence,
        clientLimits: p.limits,
        limits: { maxPeers: config.shards.max_peers, maxSwarms: config.shards.max_swarms },
        uws: p.uws,
        ws: p.ws,
        replication: p.replication,
      }),
      metricsToken: config.admin.metrics_token,
      readyHeartbeatSeconds: config.shards.ready_heartbeat_seconds,
    });
    return {
      server,
      async close() {
        await server.close();
        await sql?.end({ timeout: 1 });
      },
    };
  } catch (e) {
    await sql?.end({ timeout: 1 });
    throw e;
  }
}
