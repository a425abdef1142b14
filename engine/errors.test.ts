import bencode from 'bencode';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configTable } from './config.js';
import { FAILURE_BODIES, FAILURES } from './errors.js';

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

describe('documentation stays true', () => {
  it('documents every failure reason in the README, code and message', () => {
    for (const [code, message] of Object.entries(FAILURES)) {
      expect(readme, code).toContain(`| \`${code}\` | ${message} |`);
    }
  });

  it('has the configuration table whole in the README: keys, variables, defaults and comments', () => {
    // on failure, the expected table is in the diff: paste it over the README's
    const table = configTable();
    const start = readme.indexOf('| key | environment | default | meaning |');
    const end = readme.indexOf('\n\n', start);
    expect(start).toBeGreaterThan(0);
    expect(readme.slice(start, end)).toBe(table);
  });
});

describe('failure bodies', () => {
  it('are bencoded dictionaries holding only the failure reason', () => {
    for (const [code, body] of Object.entries(FAILURE_BODIES)) {
      const d = bencode.decode(body) as Record<string, Uint8Array>;
      expect(Object.keys(d)).toEqual(['failure reason']);
      expect(Buffer.from(d['failure reason']).toString()).toBe(FAILURES[code as keyof typeof FAILURES]);
    }
  });
});
