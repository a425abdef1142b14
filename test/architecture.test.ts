// The folders' one-way arrows, checked on every import of the production code (tests may
// reach across folders to drive what they test). A forbidden arrow or a cycle between
// folders fails the suite, naming the file and the import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Which folders each folder's code may import. contract/ is what the threads share (record
 * layouts, rings, shared counters, message types); shards/, persistence/, replication/ and admin/ see only
 * it; engine/ is the acceptor and the assembly of the whole program, so it may import all.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  contract: [],
  shards: ['contract'],
  persistence: ['contract'],
  admin: ['contract'],
  replication: ['contract'],
  engine: ['contract', 'shards', 'persistence', 'admin', 'replication'],
};

/** Within engine/: the acceptor's modules never import the assembly. */
const ASSEMBLY = ['engine/main.ts', 'engine/tracker.ts', 'engine/cli.ts', 'engine/admin-assembly.ts'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Relative imports of a file (static `from '…'` and dynamic `import('…')`), resolved to .ts paths. */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const folderOf = (path: string): string => path.split('/')[0];

/** The imports (file → imported file) that cross to a folder their folder may not import. */
function forbidden(edges: [string, string][]): string[] {
  return edges.filter(([f, t]) => folderOf(t) !== folderOf(f) && !MAY_IMPORT[folderOf(f)].includes(folderOf(t))).map(([f, t]) => `${f} imports ${t}`);
}

describe('import arrows between folders', () => {
  const files = Object.keys(MAY_IMPORT).flatMap(sources);

  it('finds the code it checks', () => {
    expect(files.length).toBeGreaterThan(50);
    for (const folder of Object.keys(MAY_IMPORT)) expect(files.some((f) => folderOf(f) === folder), folder).toBe(true);
  });

  it('go only where MAY_IMPORT allows', () => {
    expect(forbidden(files.flatMap((f) => imports(f).map((t): [string, string] => [f, t])))).toEqual([]);
  });

  it('never from the acceptor into the assembly', () => {
    const bad: string[] = [];
    for (const f of files.filter((f) => folderOf(f) === 'engine' && !ASSEMBLY.includes(f))) {
      for (const target of imports(f)) if (ASSEMBLY.includes(target)) bad.push(`${f} imports ${target}`);
    }
    expect(bad).toEqual([]);
  });

  it('form no cycle between folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const f of files) {
      for (const t of imports(f)) {
        if (folderOf(t) === folderOf(f)) continue;
        if (!edges.has(folderOf(f))) edges.set(folderOf(f), new Set());
        edges.get(folderOf(f))!.add(folderOf(t));
      }
    }
    const cycle = (node: string, path: string[]): string[] | null => {
      if (path.includes(node)) return [...path.slice(path.indexOf(node)), node];
      for (const next of edges.get(node) ?? []) {
        const c = cycle(next, [...path, node]);
        if (c) return c;
      }
      return null;
    };
    for (const folder of edges.keys()) expect(cycle(folder, []), folder).toBeNull();
  });

  it('are checked by a rule that refuses what it should', () => {
    expect(forbidden([['shards/pool.ts', 'engine/config.ts'], ['admin/metrics.ts', 'persistence/pg.ts'], ['persistence/ledger.ts', 'engine/tracker.ts']])).toHaveLength(3);
    expect(forbidden([['engine/tracker.ts', 'admin/server.ts'], ['shards/pool.ts', 'contract/ring.ts'], ['admin/api.ts', 'admin/auth.ts']])).toEqual([]);
  });
});
