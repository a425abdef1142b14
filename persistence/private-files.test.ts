import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MODULE = new URL('../dist/persistence/private-files.js', import.meta.url).href;

/** `n` processes at once try to take the lock; each holding it stays a moment. Resolves with their outputs. */
function race(file: string, n: number): Promise<string[]> {
  const code = `import(${JSON.stringify(MODULE)}).then(({ pidLock }) => {
    try { pidLock(${JSON.stringify(file)}, (pid) => 'in use by ' + pid); console.log('won'); setTimeout(() => {}, 800); }
    catch (e) { console.log('lost: ' + e.message); }
  });`;
  return Promise.all(
    Array.from({ length: n }, () => new Promise<string>((resolve) => {
      const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('exit', () => resolve(out.trim()));
    })),
  );
}

describe('pidLock', () => {
  it('lets exactly one of several starts take a stale lock, and names the winner to the others', async () => {
    for (let round = 0; round < 5; round++) {
      const file = join(mkdtempSync(join(tmpdir(), 'shardtrack-lock-')), 'tracker.pid');
      writeFileSync(file, '999999 1'); // a process gone
      const outs = await race(file, 6);
      expect(outs.filter((o) => o === 'won')).toHaveLength(1);
      for (const o of outs.filter((x) => x !== 'won')) expect(o).toMatch(/^lost: in use by [1-9]\d*$/);
      expect(readFileSync(file, 'utf8')).toMatch(/^\d+ \d+$/);
    }
  }, 60_000);
});
