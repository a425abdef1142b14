// Tests that need PostgreSQL connect to the real server (127.0.0.1:5432, user postgres,
// database test, as on CI) and work in a schema of their own, dropped afterwards.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

export const PG_URL = process.env.SHARDTRACK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  name: string;
  /** A client whose search_path is the test's schema. */
  sql: postgres.Sql;
  /** Another client on the same schema (for concurrency and LISTEN). */
  connect(): postgres.Sql;
  drop(): Promise<void>;
}

export async function testSchema(): Promise<TestSchema> {
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  const name = `st_test_${randomBytes(6).toString('hex')}`;
  try {
    await admin.unsafe(`CREATE SCHEMA ${name}`);
  } catch (e) {
    await admin.end({ timeout: 1 });
    throw new Error(
      `PostgreSQL is not reachable at ${PG_URL} (${(e as Error).message}). These tests need a real server: ` +
        `start it (pg_ctlcluster <version> main start) or point SHARDTRACK_TEST_DATABASE_URL at one.`,
    );
  }
  const clients: postgres.Sql[] = [];
  const connect = () => {
    const c = postgres(PG_URL, { max: 2, onnotice: () => {}, connection: { search_path: name } });
    clients.push(c);
    return c;
  };
  return {
    name,
    sql: connect(),
    connect,
    async drop() {
      await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
      await admin.unsafe(`DROP SCHEMA ${name} CASCADE`);
      await admin.end({ timeout: 1 });
    },
  };
}
