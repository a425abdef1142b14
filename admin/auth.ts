import { createHash, randomBytes } from 'node:crypto';
import type HyperExpress from 'hyper-express';
import type postgres from 'postgres';
import { ApiError } from './api.js';

// Bearer tokens of the admin API. Only their SHA-256 is stored (admin_tokens), so a copy of
// the database gives nobody access; a revoked token fails on its next request.

export const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(req: HyperExpress.Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

export function newToken(): string {
  return `st_${randomBytes(24).toString('base64url')}`;
}

export class Tokens {
  constructor(private readonly sql: postgres.Sql) {}

  /** Create a token; the plain text is returned once and never stored. */
  async create(name: string): Promise<{ id: number; token: string }> {
    const token = newToken();
    const [row] = await this.sql`INSERT INTO admin_tokens (token_sha256, name) VALUES (${hashToken(token)}, ${name}) RETURNING id`;
    return { id: Number(row.id), token };
  }

  /** With no live token at all, make one (the first start): returns it, else null. */
  async createFirst(): Promise<string | null> {
    const [{ n }] = await this.sql`SELECT count(*)::int AS n FROM admin_tokens WHERE revoked_at IS NULL`;
    return n === 0 ? (await this.create('initial')).token : null;
  }

  /** Refuse a request without a live bearer token (401). */
  async authorize(req: HyperExpress.Request): Promise<void> {
    const token = bearerToken(req);
    if (token === undefined) throw new ApiError(401, 'unauthorized', 'send Authorization: Bearer <admin token>');
    const rows = await this.sql`SELECT 1 FROM admin_tokens WHERE token_sha256 = ${hashToken(token)} AND revoked_at IS NULL`;
    if (rows.length === 0) throw new ApiError(401, 'unauthorized', 'unknown or revoked admin token');
  }
}
