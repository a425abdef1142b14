import { defineConfig } from 'vitest/config';

// Unit tests sit beside their module (*.test.ts); integration tests live in test/ and
// drive the compiled server in dist/ (shard workers are started from compiled .js files).
export default defineConfig({
  // The `bittorrent-tracker` client (test/websocket.test.ts) imports WebRTC from a native
  // module that installs only with internet access; the tests never need it.
  resolve: { alias: { 'webrtc-polyfill': new URL('./test/support/webrtc-stub.ts', import.meta.url).pathname } },
  test: {
    server: { deps: { inline: ['bittorrent-tracker', '@thaunknown/simple-peer'] } },
    include: ['contract/**/*.test.ts', 'engine/**/*.test.ts', 'shards/**/*.test.ts', 'persistence/**/*.test.ts', 'admin/**/*.test.ts', 'replication/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // What main.js sets before uWebSockets.js loads (engine/http/uws.ts setHeaderLimit), for
    // trackers started in-process: http.max_query_bytes (8192) + 4096 bytes of headers.
    env: { UWS_HTTP_MAX_HEADERS_SIZE: '12288' },
    // The JSON report is what .ci/run turns into the plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
