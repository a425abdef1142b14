import * as v from 'valibot';
import { type Api, IdParams, iso, listOf, notFound, Page } from '../api.js';
import { type AdminContext, offset } from '../context.js';

// The ledger as the persistence thread wrote it: per user and torrent history, snatches.

const History = v.object({
  user_id: v.number(),
  torrent_id: v.number(),
  uploaded: v.number(),
  downloaded: v.number(),
  uploaded_credited: v.number(),
  downloaded_credited: v.number(),
  seed_time: v.number(),
  leech_time: v.number(),
  first_announce: v.string(),
  last_announce: v.string(),
  completed_at: v.nullable(v.string()),
});
const Snatch = v.object({ user_id: v.number(), torrent_id: v.number(), completed_at: v.string() });

type Row = Record<string, unknown>;
const history = (r: Row) => ({
  user_id: Number(r.user_id),
  torrent_id: Number(r.torrent_id),
  uploaded: Number(r.uploaded),
  downloaded: Number(r.downloaded),
  uploaded_credited: Number(r.uploaded_credited),
  downloaded_credited: Number(r.downloaded_credited),
  seed_time: Number(r.seed_time),
  leech_time: Number(r.leech_time),
  first_announce: iso(r.first_announce as Date)!,
  last_announce: iso(r.last_announce as Date)!,
  completed_at: iso(r.completed_at as Date | null),
});
const snatch = (r: Row) => ({ user_id: Number(r.user_id), torrent_id: Number(r.torrent_id), completed_at: iso(r.completed_at as Date)! });

export function ledgerRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;
  for (const [owner, column, other] of [['users', 'user_id', 'torrent_id'], ['torrents', 'torrent_id', 'user_id']] as const) {
    const col = sql(column);
    const tiebreak = sql(other);
    const exists = async (id: number) => {
      if ((await sql`SELECT 1 FROM ${sql(owner)} WHERE id = ${id}`).length === 0) throw notFound(`${owner.slice(0, -1)} ${id}`);
    };
    api.add({
      method: 'get', path: `/${owner}/:id/history`, tag: 'ledger', summary: `Per user and torrent totals of one of the ${owner}, latest first`,
      params: IdParams, query: v.object(Page), response: listOf(History),
      async handler({ params, query: q }) {
        await exists(params.id);
        const rows = await sql`SELECT * FROM history WHERE ${col} = ${params.id} ORDER BY last_announce DESC, ${tiebreak} LIMIT ${q.per_page} OFFSET ${offset(q)}`;
        const [{ n }] = await sql`SELECT count(*) AS n FROM history WHERE ${col} = ${params.id}`;
        return { items: rows.map(history), page: q.page, per_page: q.per_page, total: Number(n) };
      },
    });
    api.add({
      method: 'get', path: `/${owner}/:id/snatches`, tag: 'ledger', summary: `Completions of one of the ${owner}, latest first`,
      params: IdParams, query: v.object(Page), response: listOf(Snatch),
      async handler({ params, query: q }) {
        await exists(params.id);
        const rows = await sql`SELECT * FROM snatches WHERE ${col} = ${params.id} ORDER BY completed_at DESC, ${tiebreak} LIMIT ${q.per_page} OFFSET ${offset(q)}`;
        const [{ n }] = await sql`SELECT count(*) AS n FROM snatches WHERE ${col} = ${params.id}`;
        return { items: rows.map(snatch), page: q.page, per_page: q.per_page, total: Number(n) };
      },
    });
  }
}
