import { createRequire } from 'node:module';
import { UWS_BUILD } from './uws-build.js';

// Loading uWebSockets.js, natively or not at all. Some builds print a line and fall back to
// a JavaScript implementation when their binary does not load (the tracker would start
// "fine" at a fraction of its speed); ours is checked to be the native addon of this
// Node's ABI, and anything else stops start-up with the reason.

/** What is running: shown by --version, the start-up log and /metrics. */
export interface UwsInfo {
  /** uWebSockets.js release, e.g. v20.51.0 */
  readonly version: string;
  /** npm package and version it comes from */
  readonly package: string;
  /** the native binary loaded, e.g. uws_linux_x64_127.node */
  readonly binary: string;
}

export class UwsLoadError extends Error {}

/** The C library's version, e.g. "2.36" (Linux with glibc), else "none". */
export function glibcVersion(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ?? 'none';
}

let loaded: UwsInfo | undefined;

/**
 * Load uWebSockets.js (as hyper-express will) and prove it is the native addon. Throws a
 * UwsLoadError naming Node's version, ABI and glibc when it is not.
 */
export function loadUws(): UwsInfo {
  if (loaded) return loaded;
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const where = `Node.js ${process.version} (ABI ${process.versions.modules}) on ${process.platform}-${process.arch} with glibc ${glibcVersion()}`;
  const require = createRequire(import.meta.url);
  let uws: { App?: unknown };
  try {
    uws = require('uWebSockets.js') as { App?: unknown };
  } catch (e) {
    throw new UwsLoadError(
      `uWebSockets.js ${UWS_BUILD.uws} (${UWS_BUILD.package} ${UWS_BUILD.packageVersion}) has no binary that loads on ${where}: ` +
        `${(e as Error).message.split('\n').at(-1)}. Run Shardtrack on Node.js 22 (>= 22.12; Node 24 needs glibc >= 2.38): make run installs one.`,
    );
  }
  const native = typeof uws.App === 'function' && Function.prototype.toString.call(uws.App).includes('[native code]');
  const fromBinary = Object.keys(require.cache).some((path) => path.endsWith(`/${binary}`));
  if (!native || !fromBinary) {
    throw new UwsLoadError(`uWebSockets.js on ${where} is not the native ${binary}: refusing to serve on a JavaScript fallback`);
  }
  loaded = { version: UWS_BUILD.uws, package: `${UWS_BUILD.package}@${UWS_BUILD.packageVersion}`, binary };
  return loaded;
}

/** Bytes of request line and headers uWS accepts (read by its binary once, when it loads). */
export const HEADER_LIMIT_ENV = 'UWS_HTTP_MAX_HEADERS_SIZE';
/** Room for the request line's method, path and version and the usual headers. */
export const HEADER_ROOM = 4096;

/**
 * Before uWS loads: let it accept request lines as long as `http.max_query_bytes` allows
 * (its own default, 4096 bytes, would answer 431 before the tracker could refuse a long
 * query with a failure reason). An operator's own setting of the variable wins.
 */
export function setHeaderLimit(maxQueryBytes: number): void {
  process.env[HEADER_LIMIT_ENV] ??= String(maxQueryBytes + HEADER_ROOM);
}
