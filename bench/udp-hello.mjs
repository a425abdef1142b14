#!/usr/bin/env node
// Ceiling server for the UDP benchmark: the fastest a tracker on Node's dgram could answer,
// doing no tracker work at all (no connection id check, no parsing, no swarm).
//
//   node bench/udp-hello.mjs PORT [HOST] [--peers N]
//
// BEP 15 shapes only: a connect (16+ bytes, action 0) gets a fixed 16-byte answer (action 0,
// the request's transaction id, a fixed connection id); an announce (98+ bytes, action 1)
// gets a fixed 20-byte header (action 1, the transaction id, interval 1800, 0 leechers,
// 0 seeders) followed by N zero-filled 6-byte peers (--peers, default 0, so the answer is
// exactly the header). Anything else is dropped. HOST defaults to 127.0.0.1; an IPv6 HOST
// ("::1", "::") makes an udp6 socket (dual stack for "::"). Like Shardtrack it answers with
// socket.send(buf, port, address) on the rinfo of each datagram. SIGINT/SIGTERM close the
// socket and exit. Prints "udp-hello listening on HOST:PORT" once bound.

import dgram from 'node:dgram'

const argv = process.argv.slice(2)
let peers = 0
const pos = []
for (let k = 0; k < argv.length; k++) {
  if (argv[k] === '--peers') peers = Number(argv[++k])
  else if (argv[k].startsWith('--peers=')) peers = Number(argv[k].slice(8))
  else pos.push(argv[k])
}
const [portArg, host = '127.0.0.1'] = pos
const port = Number(portArg)
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !Number.isInteger(peers) || peers < 0 || peers > 200) {
  process.stderr.write('usage: node bench/udp-hello.mjs PORT [HOST] [--peers N]\n')
  process.exit(2)
}

const CONNECTION_ID = Buffer.from([0x5a, 0x11, 0xd7, 0x2a, 0xc3, 0x09, 0x6e, 0x41])
// A ring of answer buffers instead of one per datagram: send() completes synchronously on
// loopback (Node tries uv_udp_try_send first), so a buffer is free again long before the
// ring comes back to it even if a send had to be queued.
const RING = 4096
const ANNOUNCE_BYTES = 20 + 6 * peers
const connects = new Array(RING)
const announces = new Array(RING)
for (let i = 0; i < RING; i++) {
  const c = Buffer.alloc(16)
  CONNECTION_ID.copy(c, 8) // action 0 at 0..3 stays zero
  connects[i] = c
  const a = Buffer.alloc(ANNOUNCE_BYTES)
  a.writeUInt32BE(1, 0)
  a.writeUInt32BE(1800, 8)
  announces[i] = a
}
let next = 0

const socket = dgram.createSocket({
  type: host.includes(':') ? 'udp6' : 'udp4',
  ipv6Only: false,
  recvBufferSize: 8 << 20, // capped by net.core.rmem_max, as for Shardtrack
  sendBufferSize: 8 << 20,
})
let answered = 0
socket.on('message', (msg, rinfo) => {
  const len = msg.length
  if (len < 16) return
  const action = msg.readUInt32BE(8)
  let out
  if (action === 0) out = connects[next]
  else if (action === 1 && len >= 98) out = announces[next]
  else return
  next = (next + 1) & (RING - 1)
  // transaction id: bytes 12..15 of the request, bytes 4..7 of the answer
  out[4] = msg[12]; out[5] = msg[13]; out[6] = msg[14]; out[7] = msg[15]
  socket.send(out, rinfo.port, rinfo.address)
  answered++
})
socket.on('error', (e) => {
  if (!socket.bound) { process.stderr.write(`udp-hello: ${e.message}\n`); process.exit(1) }
  // ICMP-induced send errors (a generator that went away) must not stop the server
})
socket.bind(port, host, () => {
  socket.bound = true
  process.stdout.write(`udp-hello listening on ${host}:${socket.address().port} (announce answer ${ANNOUNCE_BYTES} bytes, ` +
    `receive buffer ${socket.getRecvBufferSize()} bytes)\n`)
})
const stop = () => {
  process.stdout.write(`udp-hello: ${answered} datagrams answered\n`)
  socket.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
