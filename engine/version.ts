import { readFileSync } from 'node:fs';

// The release, from package.json (two levels up from dist/engine/, where this runs).
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
