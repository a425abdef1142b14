import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { clientAddressFromForwarded, fromRemoteAddress, parseIp, type CidrList } from '../net/ip.js';

const scratch = new Uint8Array(16);

/**
 * The client's address into out[off..off+16]: the socket's, or, when the socket is a trusted
 * proxy's (net.trusted_proxies), the client it names in X-Forwarded-For or X-Real-IP. For
 * announces, scrapes and WebSocket upgrades alike.
 */
export function clientAddress(res: HttpResponse, req: HttpRequest, trusted: CidrList, out: Uint8Array, off: number): void {
  fromRemoteAddress(res.getRemoteAddress(), out, off);
  if (trusted.size === 0 || !trusted.has(out, off)) return;
  const xff = req.getHeader('x-forwarded-for');
  if (xff !== '' && clientAddressFromForwarded(xff, trusted, out, off)) return;
  const real = req.getHeader('x-real-ip');
  if (real !== '' && parseIp(real.trim(), scratch, 0)) out.set(scratch, off);
}
