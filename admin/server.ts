import { timingSafeEqual } from 'node:crypto';
import HyperExpress from 'hyper-express';
import type postgres from 'postgres';
import type { Logger } from '../contract/log.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { ReplicationStats } from '../contract/replication.js';
import { Api } from './api.js';
import { bearerToken, hashToken, Tokens } from './auth.js';
import type { AdminContext, TrackerView } from './context.js';
import { openApi } from './openapi.js';
import { autoBanRoutes } from './routes/auto-bans.js';
import { flagRoutes } from './routes/flags.js';
import { ledgerRoutes } from './routes/ledger.js';
import { policyRoutes } from './routes/policy.js';
import { statsRoutes } from './routes/stats.js';
import { swarmRoutes } from './routes/swarms.js';
import { tokenRoutes } from './routes/tokens.js';
import { torrentRoutes } from './routes/torrents.js';
import { userRoutes } from './routes/users.js';

// The admin listener: the REST API under /api/v1 (bearer tokens), its OpenAPI document,
// /health and /ready for load balancers and orchestrators, and /metrics when the metrics
// module is given. On its own loopback port by default, or on the tracker's HTTP server.

export interface AdminOptions {
  view: TrackerView;
  host: string;
  port: number; // 0 = a free port (the caller checks a fixed one is free: uWS would share it)
  /** Serve on this server (the tracker's) instead of a listener of our own. */
  shared?: HyperExpress.Server;
  /**
   * The tracker's database, its schema on the search path (the caller makes and ends the
   * client); undefined without one: then only /health, /ready and /metrics are served.
   */
  sql: postgres.Sql | undefined;
  version: string;
  log: Logger;
  /** Prometheus exposition (admin/metrics.ts). */
  metrics?: { contentType: string; text(): Promise<string> };
  /**
   * Bearer token /metrics requires ('' = none). Without one, /metrics is not served on the
   * tracker's public port (`shared`): the swarm and user counts are the site's business.
   */
  metricsToken?: string;
  /** /ready fails for a shard whose loop has not turned for longer (seconds). */
  readyHeartbeatSeconds: number;
}

export interface AdminServer {
  readonly port: number;
  /** The token made on the first start (no token existed), shown once. */
  readonly firstToken: string | null;
  readonly api: Api;
  close(): Promise<void>;
}

/** Journal share of its budget beyond which /ready fails while the database is away. */
const READY_JOURNAL_SHARE = 0.8;

export async function startAdmin(o: AdminOptions): Promise<AdminServer> {
  const server = o.shared ?? new HyperExpress.Server({ max_body_length: 64 * 1024 });
  const sql = o.sql;

  const api = new Api();
  let firstToken: string | null = null;
  if (sql) {
    const tokens = new Tokens(sql);
    const persistence = o.view.persistence;
    // A write is committed before the caches reload: if the reload fails (database gone a
    // moment), the change still applies at the next load, so the write is not an error.
    const reload = async (): Promise<void> => {
      await persistence?.reload().catch((e: Error) => o.log(`admin: ${e.message}`, 'warn'));
    };
    const ctx: AdminContext = { sql, tokens, reload };
    userRoutes(api, ctx);
    torrentRoutes(api, ctx);
    policyRoutes(api, ctx);
    ledgerRoutes(api, ctx);
    flagRoutes(api, ctx);
    tokenRoutes(api, ctx);
    statsRoutes(api, o.view);
    swarmRoutes(api, o.view);
    autoBanRoutes(api, o.view);
    try {
      firstToken = await tokens.createFirst();
    } catch (e) {
      // the tracker serves while the database is away; the token comes at a start that reaches it
      o.log(`admin: could not check for admin tokens (${(e as Error).message}); the API answers once the database does`, 'warn');
    }
    const doc = openApi(api, o.version);
    server.get('/api/v1/openapi.json', (_req, res) => void res.json(doc));
    api.mount(server, '/api/v1', (req) => tokens.authorize(req), o.log);
  } else {
    o.log('admin API off: it needs the database (database.enabled = false); /health, /ready and /metrics stay', 'warn');
  }

  server.get('/health', (_req, res) => void res.json({ status: 'ok' }));
  server.get('/ready', (_req, res) => {
    const problems = readiness(o.view, o.readyHeartbeatSeconds);
    const degraded = degradations(o.view);
    const status = problems.length ? 'unavailable' : degraded.length ? 'degraded' : 'ready';
    res.status(problems.length ? 503 : 200).json({ status, problems, degraded });
  });
  const token = o.metricsToken ?? '';
  if (o.metrics && o.shared && token === '') {
    o.log('/metrics is not served on the tracker port without admin.metrics_token (set one, and give it to Prometheus as a bearer token)', 'warn');
  } else if (o.metrics) {
    const m = o.metrics;
    // Compared as hashes: equal lengths for timingSafeEqual, and no timing on the token.
    const want = hashToken(token);
    server.get('/metrics', async (req, res) => {
      if (token !== '') {
        if (!timingSafeEqual(hashToken(bearerToken(req) ?? ''), want)) {
          res.status(401).json({ error: 'unauthorized', message: 'send Authorization: Bearer <admin.metrics_token>' });
          return;
        }
      }
      res.header('content-type', m.contentType).send(await m.text());
    });
  }

  let port = 0;
  if (!o.shared) {
    await server.listen(o.port, o.host);
    port = server.port ?? o.port;
  }
  return {
    port,
    firstToken,
    api,
    async close() {
      if (!o.shared) server.close();
    },
  };
}

/** What the tracker serves without (it answers, with less): Redis away, a resync under way. */
export function degradations(view: TrackerView): string[] {
  const rs = view.replication?.stats;
  if (!rs) return [];
  if (rs[ReplicationStats.REDIS_UP] !== 1) return ['Redis unreachable: serving this node peers only, other nodes peers as last known'];
  if (rs[ReplicationStats.JOINED] === 1 && rs[ReplicationStats.SYNCED] !== 1) return ['resynchronising with the other nodes'];
  return [];
}

/** What keeps the tracker from serving properly; empty when ready. */
export function readiness(view: TrackerView, heartbeatSeconds: number): string[] {
  const problems: string[] = [];
  for (let i = 0; i < view.shards.count; i++) {
    const s = view.shards.stats(i);
    if (!s.up) problems.push(`shard ${i} is not running`);
    else if (s.starting) problems.push(`shard ${i} is starting (recovering its tables)`);
    else if (s.heartbeatAge > heartbeatSeconds) problems.push(`shard ${i} has not turned its loop for ${s.heartbeatAge} s: it answers nothing`);
  }
  const rs = view.replication?.stats;
  if (rs && rs[ReplicationStats.REDIS_UP] === 1 && rs[ReplicationStats.JOINED] !== 1) problems.push('joining the cluster: loading the other nodes peers from Redis');
  if (rs && view.replication!.unreadyWhenDown) problems.push(...degradations(view));
  const ps = view.persistence?.stats;
  if (ps && ps[PersistenceStats.DB_UP] !== 1 && ps[PersistenceStats.JOURNAL_BYTES] >= ps[PersistenceStats.JOURNAL_BUDGET] * READY_JOURNAL_SHARE) {
    problems.push(`database unreachable and the journal at ${Math.round((ps[PersistenceStats.JOURNAL_BYTES] / ps[PersistenceStats.JOURNAL_BUDGET]) * 100)}% of its budget`);
  }
  return problems;
}
