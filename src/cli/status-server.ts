import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Sweeper } from '../core/sweeper.js';
import { SeatctlError } from '../errors.js';
import type { SweeperMetrics } from './metrics.js';

export interface StatusServer {
  /** Where it listens, as a URL: http://127.0.0.1:9465 */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * One small HTTP server for --metrics: /metrics (Prometheus text), /healthz
 * (200 while the database answered within 3 intervals, or 3 × --max-lag;
 * 503 otherwise) and /readyz (200 once the database answered). Health bodies
 * are one line of JSON saying why.
 */
export async function startStatusServer(
  sweeper: Sweeper,
  metrics: SweeperMetrics,
  listen: { host: string; port: number },
): Promise<StatusServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const json = (status: number, body: Record<string, unknown>) => {
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(`${JSON.stringify(body)}\n`);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.render().then(
        (text) => {
          response.writeHead(200, { 'content-type': metrics.contentType });
          response.end(text);
        },
        (error: unknown) => {
          response.writeHead(500, { 'content-type': 'text/plain' });
          response.end(`${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
    } else if (path === '/healthz') {
      const health = sweeper.health();
      json(health.healthy ? 200 : 503, {
        status: health.healthy ? 'ok' : 'failing',
        reason: health.reason,
        lastSuccess: health.lastSuccessAt?.toISOString() ?? null,
      });
    } else if (path === '/readyz') {
      const health = sweeper.health();
      json(health.ready ? 200 : 503, {
        status: health.ready ? 'ready' : 'waiting',
        reason: health.ready ? 'the database answered' : `the database has not answered yet${health.healthy ? '' : `: ${health.reason}`}`,
      });
    } else {
      json(404, { status: 'not found', reason: 'try /metrics, /healthz or /readyz' });
    }
  });
  // A scraper's idle keep-alive connection must not hold the process open at the stop.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new SeatctlError(
          'usage',
          `cannot serve metrics on ${listen.host}:${listen.port}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.code === 'EACCES' ? 'permission denied' : error.message}`,
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

