#!/usr/bin/env node
// Ceiling servers for the HTTP benchmark: the fastest a tracker on this stack could answer,
// doing no tracker work at all.
//
//   node bench/hello.mjs hyper PORT [HOST]   hyper-express Server, GET /announce → fixed body
//   node bench/hello.mjs uws   PORT [HOST]   raw uWebSockets.js App, GET /* → the same body
//
// The body is a fixed bencoded announce answer (~60 bytes: counts, interval and two compact
// peers), sent with `Content-Type: text/plain` like a tracker. HOST defaults to 127.0.0.1.
// SIGINT/SIGTERM close the listen socket and exit.

import HyperExpress from 'hyper-express'
import uWS from 'uWebSockets.js'

const [kind, portArg, host = '127.0.0.1'] = process.argv.slice(2)
const port = Number(portArg)
if (!['hyper', 'uws'].includes(kind) || !Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: node bench/hello.mjs hyper|uws PORT [HOST]\n')
  process.exit(2)
}

// d8:completei7e10:incompletei3e8:intervali1800e5:peers12:<2 × (4-byte IPv4, 2-byte port)>e
const BODY = Buffer.concat([
  Buffer.from('d8:completei7e10:incompletei3e8:intervali1800e5:peers12:', 'latin1'),
  Buffer.from([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 7, 0xc8, 0xd5]),
  Buffer.from('e', 'latin1'),
])

let stop
if (kind === 'hyper') {
  const server = new HyperExpress.Server()
  server.get('/announce', (req, res) => {
    res.header('Content-Type', 'text/plain').send(BODY)
  })
  await server.listen(port, host)
  stop = () => server.close()
} else {
  let listenSocket = null
  const app = uWS.App().get('/*', (res, req) => {
    res.cork(() => {
      res.writeHeader('Content-Type', 'text/plain').end(BODY)
    })
  })
  await new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (!s) reject(new Error(`uWS: cannot listen on ${host}:${port}`))
      listenSocket = s
      resolve()
    })
  })
  stop = () => { if (listenSocket) uWS.us_listen_socket_close(listenSocket); listenSocket = null }
}

process.stdout.write(`hello ${kind} listening on http://${host}:${port} (pid ${process.pid}, body ${BODY.length} bytes)\n`)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    try { stop() } finally { process.exit(0) }
  })
}
