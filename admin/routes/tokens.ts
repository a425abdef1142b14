import * as v from 'valibot';
import { type Api, IdParams, iso, listOf, notFound, Page } from '../api.js';
import { type AdminContext, offset } from '../context.js';

// Admin tokens: created (the plain token is shown once), listed, revoked.

const Token = v.object({ id: v.number(), name: v.string(), created_at: v.string(), revoked_at: v.nullable(v.string()) });
type Row = Record<string, unknown>;
const token = (r: Row) => ({ id: Number(r.id), name: r.name as string, created_at: iso(r.created_at as Date)!, revoked_at: iso(r.revoked_at as Date | null) });

export function tokenRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;
  api.add({
    method: 'get', path: '/tokens', tag: 'tokens', summary: 'List admin tokens (never their secret)', query: v.object(Page), response: listOf(Token),
    async handler({ query: q }) {
      const rows = await sql`SELECT id, name, created_at, revoked_at FROM admin_tokens ORDER BY id LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const [{ n }] = await sql`SELECT count(*) AS n FROM admin_tokens`;
      return { items: rows.map(token), page: q.page, per_page: q.per_page, total: Number(n) };
    },
  });
  api.add({
    method: 'post', path: '/tokens', tag: 'tokens', summary: 'Create an admin token: the answer is the only time it is shown', status: 201,
    body: v.strictObject({ name: v.pipe(v.string(), v.minLength(1), v.maxLength(200)) }),
    response: v.object({ id: v.number(), name: v.string(), token: v.string() }),
    async handler({ body }) {
      const t = await ctx.tokens.create(body.name);
      return { id: t.id, name: body.name, token: t.token };
    },
  });
  api.add({
    method: 'delete', path: '/tokens/:id', tag: 'tokens', summary: 'Revoke an admin token', params: IdParams, status: 204, response: v.null(),
    async handler({ params }) {
      const r = await sql`UPDATE admin_tokens SET revoked_at = now() WHERE id = ${params.id} AND revoked_at IS NULL`;
      if (r.count === 0) throw notFound(`live token ${params.id}`);
      return null;
    },
  });
}
