import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UWS_BUILD } from './uws-build.js';
import { glibcVersion, loadUws } from './uws.js';

// The uWebSockets.js build is a third-party re-publish: its binaries are the ones recorded,
// and what runs is the native addon, never a JavaScript stand-in.

const require = createRequire(import.meta.url);
const dir = dirname(require.resolve('uWebSockets.js'));

describe('the uWebSockets.js build', () => {
  it('is the pinned package, and every binary it ships has the recorded sha256', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
    expect(`${pkg.name}@${pkg.version}`).toBe(`${UWS_BUILD.package}@${UWS_BUILD.packageVersion}`);
    expect(readFileSync(join(dir, 'source_commit'), 'utf8').trim()).toBe(UWS_BUILD.sourceCommit);
    const shipped = readdirSync(dir).filter((f) => f.endsWith('.node')).sort();
    expect(shipped).toEqual(Object.keys(UWS_BUILD.sha256).sort());
    for (const f of shipped) {
      expect(createHash('sha256').update(readFileSync(join(dir, f))).digest('hex'), f).toBe(UWS_BUILD.sha256[f]);
    }
  });

  it('loads as the native addon of this Node.js ABI', () => {
    const info = loadUws();
    const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
    expect(info).toEqual({ version: UWS_BUILD.uws, package: '@based/uws@6.0.1', binary });
    // the addon itself is in the module cache, and its App is a native function
    expect(Object.keys(require.cache)).toContain(join(dir, binary));
    const uws = require('uWebSockets.js') as { App: () => unknown };
    expect(Function.prototype.toString.call(uws.App)).toMatch(/\[native code\]/);
    // and it is the same module hyper-express gets
    expect(createRequire(require.resolve('hyper-express')).resolve('uWebSockets.js')).toBe(require.resolve('uWebSockets.js'));
  });

  it('runs on Node.js 22 (>= 22.12) or 24 where the host has the glibc its binary needs', () => {
    const [major, minor] = process.versions.node.split('.').map(Number);
    expect(major > 22 || (major === 22 && minor >= 12)).toBe(true);
    expect(glibcVersion()).toMatch(/^\d+\.\d+$/);
  });
});
