import { describe, expect, it } from 'vitest';
import { acceptsGzip } from './accept.js';

describe('acceptsGzip', () => {
  it('takes gzip when named or covered by *, never with q=0', () => {
    for (const h of ['gzip', 'gzip, deflate, br', 'deflate, GZIP;q=0.5', 'x-gzip', '*', 'br, *;q=0.1']) expect(acceptsGzip(h), h).toBe(true);
    for (const h of ['', 'identity', 'deflate, br', 'gzip;q=0', 'gzip; q=0.0, deflate', '*;q=0', 'gzip;q=0, *']) expect(acceptsGzip(h), h).toBe(false);
  });
});
