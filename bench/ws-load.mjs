// WebSocket tracker load (bench/suite.mjs): `--sockets` browser peers, each on its own
// socket, `--swarm` peers to a swarm; every peer announces with `--offers` made-up WebRTC
// offers (300-byte SDP) and announces again as soon as its answer comes (closed loop).
// Counts announces answered, offers relayed to the peers, and announce latency; prints
// the MEASURE/PROGRESS/RESULT lines of bench/lib/gen.mjs. With --idle: connect and announce once without offers, then hold the
// sockets for --duration seconds (the memory per connected peer is read meanwhile).
//
//   node bench/ws-load.mjs --url ws://127.0.0.1:18600/announce [--sockets 2000] [--swarm 10]
//        [--offers 5] [--duration 10] [--warmup 2] [--idle]
import { randomBytes } from 'node:crypto';
import { measuredWindow, printResult, quantiles } from './lib/gen.mjs';

const a = { url: '', sockets: '2000', swarm: '10', offers: '5', duration: '10', warmup: '2', idle: false };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k++) {
  const key = argv[k].replace(/^--/, '');
  if (key === 'idle') a.idle = true;
  else a[key] = argv[++k];
}
const N = Number(a.sockets);
const SWARM = Number(a.swarm);
const OFFERS = Number(a.offers);
const sdp = 'v=0\r\n' + 'a=fake-sdp-line\r\n'.repeat(17); // ~300 bytes, as small browser offers are
const hashes = Array.from({ length: Math.ceil(N / SWARM) }, () => randomBytes(20).toString('latin1'));

let answered = 0;
let startedAnswers = 0;
let relayed = 0;
let failures = 0;
let measuring = false;
const lat = [];
const peers = [];

function announce(p, event) {
  const offers = a.idle ? undefined : Array.from({ length: OFFERS }, () => ({ offer: { type: 'offer', sdp }, offer_id: randomBytes(20).toString('latin1') }));
  p.sent = performance.now();
  p.ws.send(JSON.stringify({ action: 'announce', info_hash: p.ih, peer_id: p.id, uploaded: 0, downloaded: 0, left: 1000, event, numwant: OFFERS, offers }));
}

await Promise.all(
  Array.from({ length: N }, (_, i) => new Promise((resolve, reject) => {
    const p = { ws: new WebSocket(a.url), ih: hashes[Math.floor(i / SWARM)], id: randomBytes(20).toString('latin1'), sent: 0, started: false };
    peers.push(p);
    p.ws.onopen = () => resolve();
    p.ws.onerror = () => reject(new Error(`socket ${i} failed`));
    p.ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (m.offer) {
        if (measuring) relayed++;
        return;
      }
      if (m['failure reason']) failures++;
      if (!p.started) {
        p.started = true; // the answer to its `started`: the closed loop begins once every peer has one
        startedAnswers++;
        if (p.loop && !a.idle) announce(p); // late: it joins the loop now
        return;
      }
      if (measuring) {
        answered++;
        lat.push(performance.now() - p.sent);
      }
      if (!a.idle) announce(p);
    };
  })),
);
// every peer in its swarm first (each `started` answered, or 10 s), then the closed loop
for (const p of peers) announce(p, 'started');
for (let k = 0; k < 100 && startedAnswers < N; k++) await new Promise((r) => setTimeout(r, 100));
if (startedAnswers < N) process.stderr.write(`ws-load: ${N - startedAnswers} of ${N} started announces unanswered after 10 s\n`);
// (a peer whose `started` is still unanswered joins the loop when its answer comes)
for (const p of peers) if (p.started && !a.idle) announce(p);
for (const p of peers) p.loop = true;
await new Promise((r) => setTimeout(r, Number(a.warmup) * 1000));
const w = await measuredWindow(Number(a.duration), () => answered, () => (measuring = true));
measuring = false;
lat.sort((x, y) => x - y);
printResult({
  sockets: N, swarm: SWARM, offers: OFFERS, requests: answered, seconds: w.wall, rps: answered / w.wall,
  offers_relayed_per_s: relayed / w.wall, errors: failures, ...quantiles(lat), gen_cpu_pct: w.gen_cpu_pct,
});
for (const p of peers) p.ws.close();
setTimeout(() => process.exit(0), 200);
