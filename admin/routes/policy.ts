import * as v from 'valibot';
import { type Api, boolParam, IdParams, iso, listOf, notFound, Page, Timestamp } from '../api.js';
import { type AdminContext, offset } from '../context.js';

// IP/CIDR bans and the client allow-list: the acceptor's admission rules besides passkeys.

const Ban = v.object({ id: v.number(), network: v.string(), reason: v.string(), expires_at: v.nullable(v.string()), created_at: v.string() });
const Client = v.object({ id: v.number(), peer_id_prefix: v.string(), peer_id_prefix_hex: v.string(), name: v.string(), created_at: v.string() });

type Row = Record<string, unknown>;
const ban = (r: Row) => ({ id: Number(r.id), network: r.network as string, reason: r.reason as string, expires_at: iso(r.expires_at as Date | null), created_at: iso(r.created_at as Date)! });
const client = (r: Row) => {
  const p = r.peer_id_prefix as Buffer;
  return { id: Number(r.id), peer_id_prefix: p.toString('latin1'), peer_id_prefix_hex: p.toString('hex'), name: r.name as string, created_at: iso(r.created_at as Date)! };
};

export function policyRoutes(api: Api, ctx: AdminContext): void {
  const { sql } = ctx;

  api.add({
    method: 'get', path: '/bans', tag: 'bans', summary: 'List bans (active=true: not expired)',
    query: v.object({ ...Page, active: v.optional(boolParam()) }),
    response: listOf(Ban),
    async handler({ query: q }) {
      const where = sql`WHERE (${q.active ?? null}::bool IS NULL OR (expires_at IS NULL OR expires_at > now()) = ${q.active ?? null})`;
      const rows = await sql`SELECT id, network::text AS network, reason, expires_at, created_at FROM bans ${where} ORDER BY id LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const [{ n }] = await sql`SELECT count(*) AS n FROM bans ${where}`;
      return { items: rows.map(ban), page: q.page, per_page: q.per_page, total: Number(n) };
    },
  });

  api.add({
    method: 'post', path: '/bans', tag: 'bans', summary: 'Ban an address or network (1.2.3.4, 10.0.0.0/8, 2001:db8::/32) until expires_at', status: 201,
    body: v.strictObject({
      network: v.pipe(v.string(), v.maxLength(64), v.regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an IP address or CIDR network')),
      reason: v.pipe(v.string(), v.minLength(1), v.maxLength(500)),
      expires_at: v.optional(Timestamp),
    }),
    response: Ban,
    async handler({ body }) {
      const [r] = await sql`INSERT INTO bans (network, reason, expires_at) VALUES (${body.network}::cidr, ${body.reason}, ${body.expires_at ?? null})
        RETURNING id, network::text AS network, reason, expires_at, created_at`;
      await ctx.reload();
      return ban(r);
    },
  });

  api.add({
    method: 'delete', path: '/bans/:id', tag: 'bans', summary: 'Lift a ban', params: IdParams, status: 204, response: v.null(),
    async handler({ params }) {
      if ((await sql`DELETE FROM bans WHERE id = ${params.id}`).count === 0) throw notFound(`ban ${params.id}`);
      await ctx.reload();
      return null;
    },
  });

  api.add({
    method: 'get', path: '/clients', tag: 'clients', summary: 'The client allow-list (empty: every client may announce)',
    query: v.object(Page), response: listOf(Client),
    async handler({ query: q }) {
      const rows = await sql`SELECT * FROM client_allowlist ORDER BY id LIMIT ${q.per_page} OFFSET ${offset(q)}`;
      const [{ n }] = await sql`SELECT count(*) AS n FROM client_allowlist`;
      return { items: rows.map(client), page: q.page, per_page: q.per_page, total: Number(n) };
    },
  });

  api.add({
    method: 'post', path: '/clients', tag: 'clients', summary: 'Allow a client by peer_id prefix (text like "-qB46", or peer_id_prefix_hex)', status: 201,
    body: v.pipe(
      v.strictObject({
        peer_id_prefix: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(20))),
        peer_id_prefix_hex: v.optional(v.pipe(v.string(), v.regex(/^([0-9a-fA-F]{2}){1,20}$/, 'expected 1-20 bytes as hex'))),
        name: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
      }),
      v.check((b) => (b.peer_id_prefix === undefined) !== (b.peer_id_prefix_hex === undefined), 'give exactly one of peer_id_prefix, peer_id_prefix_hex'),
    ),
    response: Client,
    async handler({ body }) {
      const prefix = body.peer_id_prefix_hex !== undefined ? Buffer.from(body.peer_id_prefix_hex, 'hex') : Buffer.from(body.peer_id_prefix!, 'latin1');
      const [r] = await sql`INSERT INTO client_allowlist (peer_id_prefix, name) VALUES (${prefix}, ${body.name}) RETURNING *`;
      await ctx.reload();
      return client(r);
    },
  });

  api.add({
    method: 'delete', path: '/clients/:id', tag: 'clients', summary: 'Remove a client from the allow-list', params: IdParams, status: 204, response: v.null(),
    async handler({ params }) {
      if ((await sql`DELETE FROM client_allowlist WHERE id = ${params.id}`).count === 0) throw notFound(`client ${params.id}`);
      await ctx.reload();
      return null;
    },
  });
}
