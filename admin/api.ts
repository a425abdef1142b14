import { randomBytes } from 'node:crypto';
import type HyperExpress from 'hyper-express';
import * as v from 'valibot';
import type { Logger } from '../contract/log.js';

// The admin API's routing: every route is declared once with valibot schemas for its path
// parameters, query, body and answer. The same declarations validate requests, shape
// errors and generate the OpenAPI document (admin/openapi.ts), so docs cannot drift.
// Each capability adds its routes from its own module (admin/routes/*.ts).

export type Method = 'get' | 'post' | 'patch' | 'delete';
type Obj = v.ObjectSchema<v.ObjectEntries, undefined> | v.StrictObjectSchema<v.ObjectEntries, undefined>;

export interface RouteSpec<P extends Obj | undefined, Q extends Obj | undefined, B extends v.GenericSchema | undefined, R extends v.GenericSchema> {
  method: Method;
  /** Under /api/v1, hyper-express syntax: /users/:id */
  path: string;
  tag: string;
  summary: string;
  params?: P;
  query?: Q;
  body?: B;
  response: R;
  /** Success status (default 200; 201 for creations, 204 for no content). */
  status?: number;
  handler(input: {
    params: P extends Obj ? v.InferOutput<P> : Record<string, never>;
    query: Q extends Obj ? v.InferOutput<Q> : Record<string, never>;
    body: B extends v.GenericSchema ? v.InferOutput<B> : undefined;
  }): Promise<v.InferOutput<R>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = RouteSpec<any, any, any, any>;

/** An error the API answers as `{ error, message }` with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);

/** Error bodies, declared once for the OpenAPI document. */
export const ErrorBody = v.object({
  error: v.pipe(v.string(), v.description('stable code: invalid_params, invalid_query, invalid_body, unauthorized, not_found, conflict, internal')),
  message: v.pipe(v.string(), v.description('what was wrong, for people')),
  request_id: v.pipe(v.string(), v.description('names this request in the tracker log (also the X-Request-Id header)')),
});


export class Api {
  readonly routes: AnyRoute[] = [];
  /** Request ids: a random prefix per process, then a counter (unique across restarts too). */
  private readonly idPrefix = randomBytes(4).toString('hex');
  private requests = 0;

  add<P extends Obj | undefined, Q extends Obj | undefined, B extends v.GenericSchema | undefined, R extends v.GenericSchema>(
    spec: RouteSpec<P, Q, B, R>,
  ): void {
    this.routes.push(spec as AnyRoute);
  }

  /**
   * Register every route on `server` under `prefix`. `authorize` runs first and throws an
   * ApiError to refuse; the OpenAPI document itself is public. An internal error is logged
   * whole with its route and request id; the client gets the id, never the internals.
   */
  mount(server: HyperExpress.Server, prefix: string, authorize: (req: HyperExpress.Request) => Promise<void>, log: Logger): void {
    for (const r of this.routes) {
      const route = `${r.method.toUpperCase()} ${prefix}${r.path}`;
      server[r.method](prefix + r.path, async (req, res) => {
        try {
          await authorize(req);
          const params = parse(r.params, req.path_parameters, 'invalid_params');
          const query = parse(r.query, req.query_parameters, 'invalid_query');
          let body: unknown;
          if (r.body) {
            // (hyper-express's json() turns bad JSON into {}: parse it ourselves)
            let raw: unknown;
            try {
              raw = JSON.parse(await req.text());
            } catch {
              throw new ApiError(400, 'invalid_body', 'the body must be JSON');
            }
            body = parse(r.body, raw, 'invalid_body');
          }
          const out = await r.handler({ params, query, body } as never);
          const status = r.status ?? 200;
          if (status === 204) res.status(204).send();
          else res.status(status).json(out);
        } catch (e) {
          const err = asApiError(e);
          const id = `${this.idPrefix}-${(++this.requests).toString(36)}`;
          if (err.status >= 500) log(`admin: ${route} failed (request ${id}): ${(e as Error)?.stack ?? String(e)}`, 'error');
          if (!res.completed) res.status(err.status).header('x-request-id', id).json({ error: err.code, message: err.message, request_id: id });
        }
      });
    }
  }
}

function parse(schema: v.GenericSchema | undefined, input: unknown, code: string): unknown {
  if (!schema) return {};
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const at = v.getDotPath(issue);
  throw new ApiError(400, code, `${at ? `${at}: ` : ''}${issue.message}`);
}

/** PostgreSQL errors a client caused become 4xx; anything else is a 500 with no internals. */
function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const code = (e as { code?: unknown }).code;
  if (code === '23505') return new ApiError(409, 'conflict', (e as { detail?: string }).detail ?? (e as Error).message);
  if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))) return new ApiError(400, 'invalid_body', (e as Error).message);
  return new ApiError(500, 'internal', 'internal error (see the tracker log)');
}

// ---------------------------------------------------------------------------------------------
// Schema pieces shared by the route modules

/** An integer from a path or query string. */
export const intParam = (min = 1, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.string(), v.regex(/^-?\d{1,16}$/, 'expected an integer'), v.transform(Number), v.integer(), v.minValue(min), v.maxValue(max));

/** A boolean from a query string. */
export const boolParam = () => v.pipe(v.picklist(['true', 'false']), v.transform((s) => s === 'true'));

export const Page = {
  page: v.optional(intParam(1, 1_000_000), '1'),
  per_page: v.optional(intParam(1, 1000), '50'),
};

export const IdParams = v.object({ id: intParam() });

/** A list answer: the items and where they are in the whole. */
export function listOf<T extends v.GenericSchema>(item: T) {
  return v.object({
    items: v.array(item),
    page: v.number(),
    per_page: v.number(),
    total: v.pipe(v.number(), v.description('items matching the filters, all pages')),
  });
}

export const InfoHash = v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{40}$/, 'expected 40 hex digits'), v.description('20 bytes as 40 hex digits'));

/** Unix time or ISO 8601 text in, an ISO 8601 string out. */
export const Timestamp = v.pipe(v.string(), v.isoTimestamp(), v.description('ISO 8601 time'));

export const iso = (d: Date | null | undefined): string | null => (d ? new Date(d).toISOString() : null);
