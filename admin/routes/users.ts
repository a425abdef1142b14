import { randomBytes } from 'node:crypto';
import * as v from 'valibot';
import { type Api, boolParam, IdParams, iso, listOf, notFound, Page } from '../api.js';
import { type AdminContext, offset } from '../context.js';

// Users: passkeys, leeching rights, credit adjustments. Writes apply to announces at once.

const Passkey = v.pipe(v.string(), v.regex(/^[A-Za-z0-9]{16,64}$/, 'passkey must be 16-64 letters and digits'));

const User = v.object({
  id: v.number(),
  passkey: v.string(),
  old_passkey: v.nullable(v.string()),
  old_passkey_expires: v.nullable(v.string()),
  class: v.string(),
  can_leech: v.boolean(),
  enabled: v.boolean(),
  uploaded: v.number(),
  downloaded: v.number(),
  uploaded_credited: v.number(),
  downloaded_credited: v.number(),
  bonus: v.number(),
  seed_time: v.number(),
  created_at: v.string(),
});

const COLUMNS = 'id, passkey, old_passkey, old_passkey_expires, class, can_leech, enabled, uploaded, downloaded, uploaded_credited, downloaded_credited, bonus, seed_time, created_at';

type Row = Record<string, unknown>;
const user = (r: Row): v.InferOutput<typeof User> => ({
  id: Number(r.id),
  passkey: r.passkey as string,
  old_passkey: (r.old_passkey as string | null) ?? null,
  old_passkey_expires: iso(r.old_passkey_expires as Date | null),
  class: r.class as string,
  can_leech: r.can_leech as boolean,
  enabled: r.enabled as boolean,
  uploaded: Number(r.uploaded),
  downloaded: Number(r.downloaded),
  uploaded_credited: Number(r.uploaded_credited),
  downloaded_credited: Number(r.downloaded_credited),
  bonus: Number(r.bonus),
  seed_time: Number(r.seed_time),
  created_at: iso(r.created_at as Date)!,
});

export function userRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;
  const one = async (id: number) => {
    const [r] = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM users WHERE id = ${id}`;
    if (!r) throw notFound(`user ${id}`);
    return user(r);
  };

  api.add({
    method: 'get', path: '/users', tag: 'users', summary: 'List users (filters: class, can_leech, enabled)',
    query: v.object({ ...Page, class: v.optional(v.string()), can_leech: v.optional(boolParam()), enabled: v.optional(boolParam()) }),
    response: listOf(User),
    async handler({ query: q }) {
      const where = sql`WHERE (${q.class ?? null}::text IS NULL OR class = ${q.class ?? null})
                          AND (${q.can_leech ?? null}::bool IS NULL OR can_leech = ${q.can_leech ?? null})
                          AND (${q.enabled ?? null}::bool IS NULL OR enabled = ${q.enabled ?? null})`;
      const rows = await sql`SELECT ${sql.unsafe(COLUMNS)}, count(*) OVER () AS total FROM users ${where} ORDER BY id LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const total = rows.length ? Number(rows[0].total) : Number((await sql`SELECT count(*) AS n FROM users ${where}`)[0].n);
      return { items: rows.map(user), page: q.page, per_page: q.per_page, total };
    },
  });

  api.add({
    method: 'get', path: '/users/:id', tag: 'users', summary: 'One user with their totals', params: IdParams, response: User,
    handler: ({ params }) => one(params.id),
  });

  api.add({
    method: 'post', path: '/users', tag: 'users', summary: 'Create a user (a passkey is generated unless given)', status: 201,
    body: v.strictObject({ passkey: v.optional(Passkey), class: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), can_leech: v.optional(v.boolean()) }),
    response: User,
    async handler({ body }) {
      const [r] = await sql`INSERT INTO users (passkey, class, can_leech)
        VALUES (${body.passkey ?? randomBytes(16).toString('hex')}, ${body.class ?? 'user'}, ${body.can_leech ?? true}) RETURNING ${sql.unsafe(COLUMNS)}`;
      await ctx.reload();
      return user(r);
    },
  });

  api.add({
    method: 'patch', path: '/users/:id', tag: 'users', summary: 'Change class, leeching rights or enable/disable', params: IdParams,
    body: v.strictObject({ class: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), can_leech: v.optional(v.boolean()), enabled: v.optional(v.boolean()) }),
    response: User,
    async handler({ params, body }) {
      const [r] = await sql`UPDATE users SET class = coalesce(${body.class ?? null}, class), can_leech = coalesce(${body.can_leech ?? null}, can_leech),
        enabled = coalesce(${body.enabled ?? null}, enabled), updated_at = now() WHERE id = ${params.id} RETURNING ${sql.unsafe(COLUMNS)}`;
      if (!r) throw notFound(`user ${params.id}`);
      await ctx.reload();
      return user(r);
    },
  });

  api.add({
    method: 'post', path: '/users/:id/passkey', tag: 'users',
    summary: 'Reset the passkey; the old one keeps working for grace_seconds (0 = stops at once)',
    params: IdParams,
    body: v.strictObject({ grace_seconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(90 * 86400)), 0), passkey: v.optional(Passkey) }),
    response: User,
    async handler({ params, body }) {
      const [r] = await sql`UPDATE users SET old_passkey = CASE WHEN ${body.grace_seconds} > 0 THEN passkey END,
          old_passkey_expires = CASE WHEN ${body.grace_seconds} > 0 THEN now() + make_interval(secs => ${body.grace_seconds}) END,
          passkey = ${body.passkey ?? randomBytes(16).toString('hex')}, updated_at = now()
        WHERE id = ${params.id} RETURNING ${sql.unsafe(COLUMNS)}`;
      if (!r) throw notFound(`user ${params.id}`);
      await ctx.reload();
      return user(r);
    },
  });

  api.add({
    method: 'post', path: '/users/:id/credit', tag: 'users', summary: 'Adjust credited upload/download (bytes, may be negative) and bonus',
    params: IdParams,
    body: v.strictObject({
      uploaded: v.optional(v.pipe(v.number(), v.integer()), 0),
      downloaded: v.optional(v.pipe(v.number(), v.integer()), 0),
      bonus: v.optional(v.number(), 0),
    }),
    response: User,
    async handler({ params, body }) {
      const [r] = await sql`UPDATE users SET uploaded_credited = uploaded_credited + ${body.uploaded},
          downloaded_credited = downloaded_credited + ${body.downloaded}, bonus = bonus + ${body.bonus}, updated_at = now()
        WHERE id = ${params.id} RETURNING ${sql.unsafe(COLUMNS)}`;
      if (!r) throw notFound(`user ${params.id}`);
      return user(r);
    },
  });

  api.add({
    method: 'delete', path: '/users/:id', tag: 'users', summary: 'Delete a user with their history, snatches and peers', params: IdParams,
    status: 204, response: v.null(),
    async handler({ params }) {
      const r = await sql`DELETE FROM users WHERE id = ${params.id}`;
      if (r.count === 0) throw notFound(`user ${params.id}`);
      await ctx.reload();
      return null;
    },
  });

}
