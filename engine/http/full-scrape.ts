import { Piscina } from 'piscina';
import { unpackFullScrape, type FullScrapeResult, type FullScrapeTask } from './full-scrape-task.js';

// Full scrape (tracker.full_scrape): every swarm in one answer. The answer is built off the
// acceptor's loop (full-scrape-task.ts, on a piscina worker: piscina's first job here) and
// kept for tracker.full_scrape_cache_seconds; meanwhile every full scrape gets those bytes,
// gzipped when the client accepts it, as opentracker does. Past that time the next request
// starts a new build and is answered with the bytes it had until the build is done, so no
// request ever waits for a walk of the tables, except the very first.

/** The full scrape, or null when it could not be built (the error is logged). */
export type FullScrapeAnswer = (r: FullScrapeResult | null) => void;

export interface FullScrapeSource {
  /** per shard: its control block and swarm slab, as they are now (slabs grow) */
  shards(): FullScrapeTask['shards'];
  minInterval: number;
  cacheMs: number;
}

const TASK = new URL('./full-scrape-task.js', import.meta.url).href;

export class FullScrapes {
  private readonly pool = new Piscina({ filename: TASK, minThreads: 0, maxThreads: 1, idleTimeout: 60_000 });
  private last: FullScrapeResult | undefined;
  private builtAt = -Infinity;
  private building: Promise<void> | undefined;
  private readonly waiting: FullScrapeAnswer[] = [];
  private closing = false;
  /** Builds finished (tests watch it). */
  builds = 0;

  constructor(
    private readonly src: FullScrapeSource,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Calls `answer` with the current full scrape: at once when there is one, else when it is built. */
  get(answer: FullScrapeAnswer): void {
    if (this.closing) return answer(null);
    if (performance.now() - this.builtAt > this.src.cacheMs) this.rebuild();
    if (this.last !== undefined) answer(this.last);
    else this.waiting.push(answer);
  }

  private rebuild(): void {
    if (this.building) return;
    const task: FullScrapeTask = { shards: this.src.shards(), minInterval: this.src.minInterval };
    this.building = this.pool.run(task).then(
      (packed: Uint8Array) => {
        this.last = unpackFullScrape(packed);
        this.builtAt = performance.now();
        this.building = undefined;
        this.builds++;
        for (const w of this.waiting.splice(0)) w(this.last);
      },
      (e: Error) => {
        this.building = undefined;
        if (!this.closing) this.onError(e); // (a build cut short by close() is no error)
        // the requests waiting get the previous answer, or a failure, rather than hang
        for (const w of this.waiting.splice(0)) w(this.last ?? null);
      },
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pool.destroy();
  }
}
