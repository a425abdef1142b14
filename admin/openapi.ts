import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { ErrorBody, type Api } from './api.js';

// The OpenAPI 3.1 document of the admin API, generated from the routes' own valibot
// schemas (the ones that validate requests), so it describes exactly what is enforced.

const schema = (s: v.GenericSchema, io: 'input' | 'output'): Record<string, unknown> => {
  // transforms (strings to numbers in paths and queries) have no JSON Schema: describe the input
  const { $schema: _, ...rest } = toJsonSchema(s, { errorMode: 'ignore', typeMode: io }) as Record<string, unknown>;
  return rest;
};

export function openApi(api: Api, version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of api.routes) {
    const path = '/api/v1' + r.path.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, s] of [['path', r.params], ['query', r.query]] as const) {
      if (!s) continue;
      const props = (schema(s, 'input').properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = new Set((schema(s, 'input').required as string[] | undefined) ?? []);
      for (const [name, p] of Object.entries(props)) {
        parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: p, description: p.description });
      }
    }
    const status = String(r.status ?? 200);
    const responses: Record<string, unknown> = {
      [status]: status === '204' ? { description: 'done' } : { description: 'OK', content: { 'application/json': { schema: schema(r.response, 'output') } } },
      '400': { description: 'invalid parameters, query or body', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      '401': { description: 'no or bad admin token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    };
    if (r.path.includes(':')) responses['404'] = { description: 'not found', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    (paths[path] ??= {})[r.method] = {
      tags: [r.tag],
      summary: r.summary,
      operationId: `${r.method}${r.path.replace(/[/:](\w)/g, (_, c: string) => c.toUpperCase()).replace(/\W/g, '')}`,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(r.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Shardtrack admin API', version },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: schema(ErrorBody, 'output') },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
