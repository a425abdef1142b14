import * as v from 'valibot';
import { ApiError, type Api, boolParam, IdParams, intParam, iso, listOf, notFound, Page, Timestamp } from '../api.js';
import { FLAG_KINDS as KINDS } from '../../contract/accounting.js';
import { type AdminContext, offset } from '../context.js';

// Anti-cheat flags (cheat_flags, 0008): claims the tracker cut or did not believe, with
// their evidence, for moderators to review and resolve. The tracker never acts on a flag
// by itself: the bounds already kept the claim out of the credited columns.


const Flag = v.object({
  id: v.number(),
  user_id: v.number(),
  torrent_id: v.number(),
  peer_id_hex: v.nullable(v.string()),
  kind: v.picklist(KINDS),
  evidence: v.pipe(v.record(v.string(), v.union([v.number(), v.string()])), v.description('the numbers: uploaded/downloaded claimed since the previous announce, *_credited, seconds, total_*, left, ip')),
  flagged_at: v.string(),
  resolved_at: v.nullable(v.string()),
  resolved_by: v.nullable(v.string()),
  resolution: v.nullable(v.string()),
});

type Row = Record<string, unknown>;
const flag = (r: Row) => ({
  id: Number(r.id),
  user_id: Number(r.user_id),
  torrent_id: Number(r.torrent_id),
  peer_id_hex: r.peer_id === null ? null : (r.peer_id as Buffer).toString('hex'),
  kind: r.kind as (typeof KINDS)[number],
  evidence: r.evidence as Record<string, number | string>,
  flagged_at: iso(r.flagged_at as Date)!,
  resolved_at: iso(r.resolved_at as Date | null),
  resolved_by: (r.resolved_by as string | null) ?? null,
  resolution: (r.resolution as string | null) ?? null,
});

export function flagRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;

  api.add({
    method: 'get', path: '/flags', tag: 'flags', summary: 'List cheat flags, newest first (filter by kind, user, torrent, time, unresolved)',
    query: v.object({
      ...Page,
      kind: v.optional(v.picklist(KINDS)),
      user_id: v.optional(intParam()),
      torrent_id: v.optional(intParam()),
      since: v.optional(Timestamp),
      until: v.optional(Timestamp),
      unresolved: v.optional(boolParam()),
    }),
    response: listOf(Flag),
    async handler({ query: q }) {
      const where = sql`WHERE (${q.kind ?? null}::text IS NULL OR kind = ${q.kind ?? null})
        AND (${q.user_id ?? null}::bigint IS NULL OR user_id = ${q.user_id ?? null})
        AND (${q.torrent_id ?? null}::bigint IS NULL OR torrent_id = ${q.torrent_id ?? null})
        AND (${q.since ?? null}::timestamptz IS NULL OR flagged_at >= ${q.since ?? null})
        AND (${q.until ?? null}::timestamptz IS NULL OR flagged_at < ${q.until ?? null})
        AND (${q.unresolved ?? null}::bool IS NULL OR (resolved_at IS NULL) = ${q.unresolved ?? null})`;
      const rows = await sql`SELECT * FROM cheat_flags ${where} ORDER BY flagged_at DESC, id DESC LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const [{ n }] = await sql`SELECT count(*) AS n FROM cheat_flags ${where}`;
      return { items: rows.map(flag), page: q.page, per_page: q.per_page, total: Number(n) };
    },
  });

  api.add({
    method: 'get', path: '/flags/:id', tag: 'flags', summary: 'One cheat flag with its evidence', params: IdParams, response: Flag,
    async handler({ params }) {
      const [r] = await sql`SELECT * FROM cheat_flags WHERE id = ${params.id}`;
      if (r === undefined) throw notFound(`flag ${params.id}`);
      return flag(r);
    },
  });

  api.add({
    method: 'post', path: '/flags/:id/resolve', tag: 'flags', summary: 'Resolve a flag: who looked at it and what they decided',
    params: IdParams,
    body: v.strictObject({
      resolved_by: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
      resolution: v.optional(v.pipe(v.string(), v.maxLength(2000)), ''),
    }),
    response: Flag,
    async handler({ params, body }) {
      const [r] = await sql`UPDATE cheat_flags SET resolved_at = now(), resolved_by = ${body.resolved_by}, resolution = ${body.resolution}
                            WHERE id = ${params.id} AND resolved_at IS NULL RETURNING *`;
      if (r !== undefined) return flag(r);
      if ((await sql`SELECT 1 FROM cheat_flags WHERE id = ${params.id}`).length === 0) throw notFound(`flag ${params.id}`);
      throw new ApiError(409, 'conflict', `flag ${params.id} is already resolved`);
    },
  });
}
