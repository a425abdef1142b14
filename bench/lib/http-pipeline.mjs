// Minimal, fast HTTP/1.1 GET loader: many keep-alive connections, each with up to `depth`
// pipelined requests in flight. Used to push hundreds of thousands of distinct announces into
// a tracker quickly (bench/rss.mjs, bench/http-load.mjs --prefill); not a latency tool.
//
// Servers that close the connection after each answer (opentracker) are handled: unanswered
// requests are re-sent on a new connection; give such servers depth 1 and close: true.
// Servers that close a connection as soon as it pipelines (uWS with deferred answers, e.g.
// Shardtrack's acceptor) are detected: after a few connections closed with several requests
// in flight and no answer, the loader falls back to depth 1 (result.pipelined = false).
// Answers must carry Content-Length (all trackers here do).

import net from 'node:net'

/**
 * @param {object} o
 * @param {string} o.host
 * @param {number} o.port
 * @param {number} o.total              number of requests: request k is path(k), k = 0 … total-1
 * @param {(k: number) => string} o.path
 * @param {number} [o.connections=64]
 * @param {number} [o.depth=16]         pipelined requests per connection
 * @param {boolean} [o.close=false]     send `Connection: close` (one request per connection)
 * @param {number} [o.deadlineMs=120000] stop (and report) after this long
 * @param {(k: number, status: number, body: Buffer) => void} [o.onAnswer]
 * @returns {Promise<{done: number, failed: number, reconnects: number, seconds: number, timedOut: boolean, pipelined: boolean}>}
 */
export function pipelinedLoad(o) {
  const connections = o.connections ?? 64
  let depth = o.close ? 1 : (o.depth ?? 16)
  let pipelineStrikes = 0
  const deadlineMs = o.deadlineMs ?? 120_000
  const tail = Buffer.from(` HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\n${o.close ? 'Connection: close\r\n' : ''}\r\n`, 'latin1')
  const t0 = Date.now()
  let nextK = 0
  const retry = []
  let done = 0, failed = 0, reconnects = 0, open = 0, finished = false
  const sockets = new Set()

  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(true), deadlineMs)
    function finish(timedOut) {
      if (finished) return
      finished = true
      clearTimeout(timer)
      for (const s of sockets) s.destroy()
      resolve({ done, failed, reconnects, seconds: (Date.now() - t0) / 1000, timedOut, pipelined: depth > 1 })
    }
    const take = () => (retry.length ? retry.pop() : nextK < o.total ? nextK++ : -1)
    const remaining = () => retry.length > 0 || nextK < o.total

    function connect() {
      open++
      const sock = net.connect({ host: o.host, port: o.port, noDelay: true })
      sockets.add(sock)
      const inflight = [] // request indices, in order
      let buf = Buffer.alloc(0)
      let broken = false
      let answered = 0

      function send() {
        const parts = []
        while (inflight.length < depth) {
          const k = take()
          if (k < 0) break
          inflight.push(k)
          parts.push(Buffer.from('GET ' + o.path(k), 'latin1'), tail)
        }
        if (parts.length) sock.write(Buffer.concat(parts))
        else if (inflight.length === 0) sock.end()
      }

      sock.on('connect', send)
      sock.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
        let off = 0
        for (;;) {
          const he = buf.indexOf('\r\n\r\n', off, 'latin1')
          if (he < 0) break
          const head = buf.toString('latin1', off, he)
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
          if (!m) { broken = true; sock.destroy(); return }
          const len = Number(m[1])
          if (he + 4 + len > buf.length) break
          const status = Number(head.slice(9, 12))
          const k = inflight.shift()
          answered++
          if (status !== 200) failed++
          done++
          if (o.onAnswer) o.onAnswer(k, status, buf.subarray(he + 4, he + 4 + len))
          off = he + 4 + len
        }
        buf = off ? buf.subarray(off) : buf
        if (inflight.length === 0) { if (o.close) sock.destroy(); else send() }
      })
      sock.on('error', () => {}) // 'close' follows
      sock.on('close', () => {
        sockets.delete(sock)
        open--
        if (finished) return
        if (depth > 1 && answered === 0 && inflight.length > 1 && ++pipelineStrikes >= 3) depth = 1
        for (const k of inflight) retry.push(k)
        if (broken) failed++
        if (remaining()) { reconnects++; connect() } else if (open === 0) finish(false)
      })
    }
    for (let c = 0; c < connections && c < o.total; c++) connect()
    if (o.total === 0) finish(false)
  })
}
