// Redis for the cluster tests: the machine's own (a key prefix per test, its keys deleted
// after), and redis-server processes a test starts itself on free ports, for what must never
// happen to the machine's Redis (a restart) and for a Redis Cluster.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { until } from './until.js';
import { freeTcpPort } from '../helpers.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * For the tests of the enclosing file: the machine's Redis, checked before the first test
 * (failing with what is missing), and a fresh key prefix per call of `prefix()`, whose
 * keys go after each test.
 */
export function machineRedis(): { prefix(): string; readonly client: Redis } {
  let client: Redis | undefined;
  const used: string[] = [];
  beforeAll(async () => {
    client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    try {
      await client.connect();
      await client.ping();
    } catch (e) {
      throw new Error(`these tests need Redis at ${REDIS_URL} (set TEST_REDIS_URL): ${(e as Error).message}`);
    }
  });
  afterEach(async () => {
    for (const p of used.splice(0)) await deleteKeys(client!, p);
  });
  afterAll(async () => {
    client?.disconnect();
  });
  return {
    prefix() {
      const p = `shardtrack-test-${process.pid}-${randomBytes(4).toString('hex')}`;
      used.push(p);
      return p;
    },
    get client() {
      return client!;
    },
  };
}

async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** A redis-server of the test's own on `port`, in memory only; stop() and start() again on the same port. */
export class OwnRedis {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'shardtrack-redis-'));

  constructor(
    readonly port: number,
    private readonly args: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.args], { stdio: 'ignore' });
    const probe = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    await until(`redis-server on port ${this.port}`, async () => {
      try {
        if (probe.status !== 'ready') await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    }, 10_000);
    probe.disconnect();
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three redis-server masters of the test's own, joined into one Redis Cluster. */
export async function ownCluster(): Promise<{ seeds: string[]; dispose(): Promise<void> }> {
  const nodes: OwnRedis[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freeTcpPort();
    const n = new OwnRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000']);
    await n.start();
    nodes.push(n);
  }
  const made = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`redis-cli --cluster create failed: ${made.stdout}${made.stderr}`);
  const probe = new Redis(nodes[0].port, '127.0.0.1');
  await until('the cluster state ok', async () => (await probe.cluster('INFO')).includes('cluster_state:ok'), 15_000);
  probe.disconnect();
  return {
    seeds: nodes.map((n) => n.url),
    async dispose() {
      for (const n of nodes) await n.dispose();
    },
  };
}
