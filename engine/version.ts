import { readFileSync } from 'node:fs';

// The release, from package.json (two levels up from dist/engine/ and from engine/).
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
