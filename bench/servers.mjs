// Tracker servers to measure Shardtrack against (bench/suite.mjs):
//
//   node bench/servers.mjs relay PORT   a minimal uWebSockets.js relay: swarms as arrays of
//                                          sockets, each offer to a random other socket; the
//                                          ceiling of what the generator can drive here
//   node bench/servers.mjs bt PORT      bittorrent-tracker's server: HTTP, WebSocket and UDP,
//                                          all on PORT (bench/suite.mjs's rival)
//
// Both stop on SIGTERM.
import { createRequire } from 'node:module';

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);

if (mode === 'relay') {
  const uWS = createRequire(import.meta.url)('uWebSockets.js');
  const swarms = new Map(); // info_hash → sockets
  const app = uWS.App().ws('/*', {
    compression: 0,
    maxPayloadLength: 65536,
    idleTimeout: 120,
    open: (ws) => (ws.getUserData().swarms = []),
    message: (ws, msg) => {
      let m;
      try {
        m = JSON.parse(Buffer.from(msg).toString());
      } catch {
        return;
      }
      if (m.action !== 'announce' || typeof m.info_hash !== 'string') return;
      let s = swarms.get(m.info_hash);
      if (s === undefined) swarms.set(m.info_hash, (s = []));
      const d = ws.getUserData();
      if (!d.swarms.includes(m.info_hash)) {
        d.swarms.push(m.info_hash);
        s.push(ws);
      }
      if (m.answer) return;
      ws.send(JSON.stringify({ action: 'announce', interval: 120, info_hash: m.info_hash, complete: 0, incomplete: s.length }));
      const offers = Array.isArray(m.offers) ? m.offers : [];
      for (let i = 0, start = Math.floor(Math.random() * s.length); i < offers.length && i < s.length - 1; i++) {
        let to = s[(start + i) % s.length];
        if (to === ws) to = s[(start + s.length - 1) % s.length];
        to.send(JSON.stringify({ action: 'announce', offer: offers[i].offer, offer_id: offers[i].offer_id, peer_id: m.peer_id, info_hash: m.info_hash }));
      }
    },
    close: (ws) => {
      for (const ih of ws.getUserData().swarms) {
        const s = swarms.get(ih);
        const i = s.indexOf(ws);
        if (i >= 0) s.splice(i, 1);
      }
    },
  });
  app.listen('127.0.0.1', port, (ok) => {
    if (!ok) process.exit(1);
    process.stderr.write(`relay listening on ${port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'bt') {
  const { default: Server } = await import('bittorrent-tracker/server'); // (not the index: it loads the client's WebRTC)
  // peers kept for the whole run (its defaults, 20 minutes and 1,000 a swarm, would empty the
  // swarms prefilled at the start before the last rounds)
  const server = new Server({ udp: true, http: true, ws: true, stats: false, trustProxy: false, peersCacheTtl: 6 * 3600 * 1000, peersCacheLength: 1_000_000 });
  server.on('warning', () => {});
  server.on('error', (e) => process.stderr.write(`bittorrent-tracker error: ${e.message}\n`));
  server.listen(port, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => process.stderr.write(`bittorrent-tracker listening on ${port}\n`));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  process.stderr.write('usage: node bench/servers.mjs relay|bt PORT\n');
  process.exit(2);
}
