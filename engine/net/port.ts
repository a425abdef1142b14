import { createServer } from 'node:net';

/**
 * Reject when something already listens on host:port. uWebSockets.js listens with
 * SO_REUSEPORT: a second process on the same port would bind without error and the kernel
 * would split connections between the two; a plain socket (no SO_REUSEPORT) cannot bind a
 * held port, so probing with one first turns that into a clear start-up error.
 */
export function assertPortFree(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'EADDRINUSE' ? `${what} port ${port} on ${host} is already in use (another tracker?)` : `cannot listen on ${host}:${port}: ${e.message}`)),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
