import * as v from 'valibot';
import { type Api, boolParam, IdParams, InfoHash, iso, listOf, notFound, Page, Timestamp } from '../api.js';
import { type AdminContext, offset } from '../context.js';

// Torrents: registration by info_hash, multipliers (freeleech = download multiplier 0) with
// an optional expiry, deletion with a reason. Writes apply to announces at once.

const Multiplier = v.pipe(v.number(), v.minValue(0), v.maxValue(100));

const Torrent = v.object({
  id: v.number(),
  info_hash: v.string(),
  info_hash_v2: v.nullable(v.string()),
  name: v.nullable(v.string()),
  size: v.number(),
  upload_multiplier: v.number(),
  download_multiplier: v.number(),
  multipliers_expire: v.nullable(v.string()),
  seeders: v.number(),
  leechers: v.number(),
  snatches: v.number(),
  registered_at: v.string(),
  deleted_at: v.nullable(v.string()),
  deleted_reason: v.nullable(v.string()),
});

const COLUMNS = `id, encode(info_hash, 'hex') AS info_hash, encode(info_hash_v2, 'hex') AS info_hash_v2, name, size,
  upload_multiplier::float8 AS upload_multiplier, download_multiplier::float8 AS download_multiplier, multipliers_expire,
  seeders, leechers, snatches, registered_at, deleted_at, deleted_reason`;

type Row = Record<string, unknown>;
const torrent = (r: Row): v.InferOutput<typeof Torrent> => ({
  id: Number(r.id),
  info_hash: r.info_hash as string,
  info_hash_v2: (r.info_hash_v2 as string | null) ?? null,
  name: (r.name as string | null) ?? null,
  size: Number(r.size),
  upload_multiplier: Number(r.upload_multiplier),
  download_multiplier: Number(r.download_multiplier),
  multipliers_expire: iso(r.multipliers_expire as Date | null),
  seeders: Number(r.seeders),
  leechers: Number(r.leechers),
  snatches: Number(r.snatches),
  registered_at: iso(r.registered_at as Date)!,
  deleted_at: iso(r.deleted_at as Date | null),
  deleted_reason: (r.deleted_reason as string | null) ?? null,
});

const hex = (s: string | undefined | null): Buffer | null => (s ? Buffer.from(s, 'hex') : null);

export function torrentRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;

  api.add({
    method: 'get', path: '/torrents', tag: 'torrents', summary: 'List torrents (filters: deleted, freeleech, info_hash)',
    query: v.object({ ...Page, deleted: v.optional(boolParam()), freeleech: v.optional(boolParam()), info_hash: v.optional(InfoHash) }),
    response: listOf(Torrent),
    async handler({ query: q }) {
      const where = sql`WHERE (${q.deleted ?? null}::bool IS NULL OR (deleted_at IS NOT NULL) = ${q.deleted ?? null})
        AND (${q.freeleech ?? null}::bool IS NULL OR (download_multiplier = 0) = ${q.freeleech ?? null})
        AND (${hex(q.info_hash)}::bytea IS NULL OR info_hash = ${hex(q.info_hash)} OR info_hash_v2 = ${hex(q.info_hash)})`;
      const rows = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM torrents ${where} ORDER BY id LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const [{ n }] = await sql`SELECT count(*) AS n FROM torrents ${where}`;
      return { items: rows.map(torrent), page: q.page, per_page: q.per_page, total: Number(n) };
    },
  });

  api.add({
    method: 'get', path: '/torrents/:id', tag: 'torrents', summary: 'One torrent', params: IdParams, response: Torrent,
    async handler({ params }) {
      const [r] = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM torrents WHERE id = ${params.id}`;
      if (!r) throw notFound(`torrent ${params.id}`);
      return torrent(r);
    },
  });

  api.add({
    method: 'post', path: '/torrents', tag: 'torrents', summary: 'Register a torrent by info_hash', status: 201,
    body: v.strictObject({
      info_hash: InfoHash,
      info_hash_v2: v.optional(InfoHash),
      name: v.optional(v.pipe(v.string(), v.maxLength(1024))),
      size: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
      upload_multiplier: v.optional(Multiplier, 1),
      download_multiplier: v.optional(Multiplier, 1),
      multipliers_expire: v.optional(Timestamp),
    }),
    response: Torrent,
    async handler({ body: b }) {
      const [r] = await sql`INSERT INTO torrents (info_hash, info_hash_v2, name, size, upload_multiplier, download_multiplier, multipliers_expire)
        VALUES (${hex(b.info_hash)}, ${hex(b.info_hash_v2)}, ${b.name ?? null}, ${b.size}, ${b.upload_multiplier}, ${b.download_multiplier},
                ${b.multipliers_expire ?? null}) RETURNING ${sql.unsafe(COLUMNS)}`;
      await ctx.reload();
      return torrent(r);
    },
  });

  api.add({
    method: 'patch', path: '/torrents/:id', tag: 'torrents', summary: 'Change name, size or multipliers (freeleech: download_multiplier 0)',
    params: IdParams,
    body: v.strictObject({
      name: v.optional(v.pipe(v.string(), v.maxLength(1024))),
      size: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
      upload_multiplier: v.optional(Multiplier),
      download_multiplier: v.optional(Multiplier),
      multipliers_expire: v.optional(v.nullable(Timestamp)),
    }),
    response: Torrent,
    async handler({ params, body: b }) {
      const [r] = await sql`UPDATE torrents SET name = coalesce(${b.name ?? null}, name), size = coalesce(${b.size ?? null}, size),
          upload_multiplier = coalesce(${b.upload_multiplier ?? null}, upload_multiplier),
          download_multiplier = coalesce(${b.download_multiplier ?? null}, download_multiplier),
          multipliers_expire = CASE WHEN ${b.multipliers_expire !== undefined} THEN ${b.multipliers_expire ?? null}::timestamptz ELSE multipliers_expire END
        WHERE id = ${params.id} RETURNING ${sql.unsafe(COLUMNS)}`;
      if (!r) throw notFound(`torrent ${params.id}`);
      await ctx.reload();
      return torrent(r);
    },
  });

  api.add({
    method: 'delete', path: '/torrents/:id', tag: 'torrents', summary: 'Delete a torrent (kept with its ledger, refused to announces) with a reason',
    params: IdParams, body: v.strictObject({ reason: v.pipe(v.string(), v.minLength(1), v.maxLength(500)) }),
    response: Torrent,
    async handler({ params, body }) {
      const [r] = await sql`UPDATE torrents SET deleted_at = now(), deleted_reason = ${body.reason}
        WHERE id = ${params.id} AND deleted_at IS NULL RETURNING ${sql.unsafe(COLUMNS)}`;
      if (!r) throw notFound(`live torrent ${params.id}`);
      await ctx.reload();
      return torrent(r);
    },
  });
}
