import * as v from 'valibot';
import { ApiError, type Api, listOf, notFound } from '../api.js';
import type { TrackerView } from '../context.js';

// Automatic bans: addresses the acceptor banned for a while after too many failed requests
// (limits.autoban_*). They live in its limiter table, not the database: they end by
// themselves, with a restart, or here.

const AutoBan = v.object({
  address: v.pipe(v.string(), v.description('IPv4 address, or an IPv6 /64 as a:b:c:d::/64')),
  until: v.pipe(v.string(), v.description('ISO 8601 time the ban ends')),
});

export function autoBanRoutes(api: Api, view: TrackerView): void {
  const limits = view.limits;
  if (limits === undefined) return;

  api.add({
    method: 'get', path: '/auto-bans', tag: 'bans', summary: 'Addresses banned automatically for repeated failures, with when each ban ends',
    response: listOf(AutoBan),
    async handler() {
      const items = limits.autoBans(Date.now()).map((b) => ({ address: b.address, until: new Date(b.until * 1000).toISOString() }));
      return { items, page: 1, per_page: Math.max(1, items.length), total: items.length };
    },
  });

  api.add({
    method: 'delete', path: '/auto-bans/:address', tag: 'bans', summary: 'Lift an automatic ban now (IPv6: any address of the /64)',
    params: v.object({ address: v.pipe(v.string(), v.maxLength(64)) }),
    status: 204, response: v.null(),
    async handler({ params }) {
      const lifted = limits.liftAddress(decodeURIComponent(params.address), Date.now());
      if (lifted === null) throw new ApiError(400, 'invalid_params', `address: not an IP address: ${params.address}`);
      if (!lifted) throw notFound(`automatic ban of ${params.address}`);
      return null;
    },
  });
}
