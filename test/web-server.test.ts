// examples/web-server.mjs as a user runs it: copied into an app directory
// whose node_modules/seatctl is this checkout, started with node, driven over
// HTTP, stopped with SIGTERM while a request is in flight.
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { cleanEnv, runCli } from './support/cli.js';
import { describeEachEngine, tempDir } from './support/engines.js';
import { start } from './support/processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function appWithExample(): string {
  const app = tempDir('seatctl-web-');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(app, 'node_modules', 'seatctl'));
  copyFileSync(join(ROOT, 'examples', 'web-server.mjs'), join(app, 'web-server.mjs'));
  return app;
}

async function post(port: number, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describeEachEngine('examples/web-server.mjs', (engine) => {
  it('locks and books over HTTP: 200 with the seats, 409 with the reasons, 400 for a bad body or an unknown event, and exits 0 on SIGTERM', async () => {
    const url = await engine.newDatabaseUrl();
    const seeded = await runCli(['--db', url, 'seed']);
    expect(seeded.code, seeded.stderr).toBe(0);
    const app = appWithExample();
    const server = start(process.execPath, [join(app, 'web-server.mjs'), '--db', url], {
      cwd: app,
      env: cleanEnv({ PORT: '0' }),
      label: 'web-server.mjs',
    });
    const port = Number(/listening on (\d+)/.exec(await server.waitForLine(/listening on \d+/))![1]);

    const event = 'Taylor Swift - Eras Tour';
    const locked = await post(port, '/lock', { event, seats: ['D1', 'D2'], user: 'alice', ttlMs: 60_000 });
    expect(locked.status).toBe(200);
    expect(locked.body.seats.map((s: { seat: string }) => s.seat)).toEqual(['D1', 'D2']);

    const taken = await post(port, '/lock', { event, seats: ['D2', 'D3'], user: 'bob' });
    expect(taken.status).toBe(409);
    expect(taken.body.conflicts).toEqual([expect.objectContaining({ seat: 'D2', reason: 'held' })]);

    const booked = await post(port, '/book', { event, seats: ['D1'], user: 'alice' });
    expect(booked.status).toBe(200);
    expect(booked.body.seats.map((s: { seat: string }) => s.seat)).toEqual(['D1']);

    expect((await post(port, '/lock', '{"event":')).status).toBe(400);
    const unknown = await post(port, '/lock', { event: 'No Such Show', seats: ['A1'], user: 'alice' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatch(/No Such Show/);
    expect((await post(port, '/nowhere', {})).status).toBe(404);
    expect(server.stderr).toBe('');

    // SIGTERM: the keep-alive connections are let go, the database closed, exit 0.
    server.signal('SIGTERM');
    const exit = await server.finished();
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toBe('');

    const list = await runCli(['--db', url, 'list-locked', '--json']);
    const mine = list.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((r) => r.type === 'lock' && r.lockedBy === 'alice' && r.seat.startsWith('D'));
    expect(mine.map((r) => r.seat)).toEqual(['D2']);
  });
});
