// The files in examples/ run as written: the crontab line in a cron-like
// environment, the systemd units' commands, and the pre-start hooks.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN, runCli } from './support/cli.js';
import { tempDir } from './support/engines.js';
import { run, start, type Exit } from './support/processes.js';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ANSI = /\u001b/;

/** An app directory with seatctl installed as a dependency and the demo database seeded in it. */
async function makeApp(): Promise<string> {
  const app = tempDir('seatctl-app-');
  mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(app, 'node_modules', 'seatctl'));
  symlinkSync(BIN, join(app, 'node_modules', '.bin', 'seatctl'));
  writeFileSync(join(app, 'server.js'), "console.log('server started');\n");
  const seeded = await runCli(['--db', join(app, 'seatctl.db'), 'seed']);
  expect(seeded.code).toBe(0);
  return app;
}

/**
 * Runs a shell command as cron does: an empty environment but for a minimal PATH, no terminal, another
 * directory. The shell and whatever it starts (npx, npm) are one process group, killed as a whole on a timeout.
 */
function likeCron(command: string, extraEnv: string[] = []): Promise<Exit> {
  const home = tempDir('seatctl-home-');
  return run(
    'env',
    [
      '-i',
      'PATH=/usr/bin:/bin',
      `HOME=${home}`,
      'LOGNAME=cron',
      'SHELL=/bin/sh',
      ...extraEnv,
      '/bin/sh',
      '-c',
      command,
    ],
    { cwd: home, group: true, timeoutMs: 60_000 },
  );
}

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The sections and keys of a systemd unit file. */
function unit(name: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current = '';
  for (const raw of readFileSync(join(EXAMPLES, name), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) sections[(current = header[1]!)] = {};
    else {
      const [key, ...value] = line.split('=');
      (sections[current]![key!] ??= []).push(value.join('='));
    }
  }
  return sections;
}

describe('examples/crontab', () => {
  it('runs under a cron-like environment: prints the total once, then nothing, never ANSI codes', async () => {
    const app = await makeApp();
    const line = readFileSync(join(EXAMPLES, 'crontab'), 'utf8')
      .split('\n')
      .find((l) => l.trim() !== '' && !l.startsWith('#'))!;
    const fields = line.trim().split(/\s+/);
    expect(fields.slice(0, 5)).toEqual(['*', '*', '*', '*', '*']);
    const command = fields.slice(5).join(' ').replace('/srv/app', app);
    expect(command).toBe(`cd ${app} && ./node_modules/.bin/seatctl release-expired-locks --quiet`);

    const first = await likeCron(command);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('Total locks released: 19\n');
    expect(first.stdout + first.stderr).not.toMatch(ANSI);
    const second = await likeCron(command);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('');
    expect(second.stderr).toBe('');
  });
});

describe("README's crontab line", () => {
  it('works the same from cron; only npm itself may add its update notice on stderr', async () => {
    const app = await makeApp();
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const line = /^\* \* \* \* \* (cd \/srv\/app && \.\/node_modules\/\.bin\/seatctl release-expired-locks --quiet)$/m.exec(readme);
    expect(line, 'the crontab line is in README.md').not.toBeNull();
    const command = line![1]!.replace('/srv/app', app);
    const npmNotices = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('npm notice'));
    const first = await likeCron(command);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('Total locks released: 19\n');
    expect(npmNotices(first.stderr)).toEqual([]);
    const second = await likeCron(command);
    expect(second.stdout).toBe('');
    expect(npmNotices(second.stderr)).toEqual([]);
    expect(first.stdout + second.stdout).not.toMatch(ANSI);
  });
});

describe('examples/ systemd units', () => {
  const substitute = (text: string, app: string) => text.replaceAll('/srv/app', app);

  it('seatctl-release.timer starts seatctl-release.service every minute, and the service releases once', async () => {
    const timer = unit('seatctl-release.timer');
    expect(timer.Timer!.Unit).toEqual(['seatctl-release.service']);
    expect(timer.Timer!.OnCalendar).toEqual(['*-*-* *:*:00']);
    const service = unit('seatctl-release.service');
    expect(service.Service!.Type).toEqual(['oneshot']);
    const app = await makeApp();
    const [exec] = service.Service!.ExecStart!;
    const env = (service.Service!.Environment ?? []).map((e) => substitute(e, app));
    const result = await likeCron(
      `cd ${substitute(service.Service!.WorkingDirectory![0]!, app)} && exec ${substitute(exec!, app)}`,
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('Total locks released: 19\n');
  });

  it('seatctl-watch.service runs a sweeper: ExecStartPost sees it ready, the health probe sees it alive, it stops on its KillSignal within TimeoutStopSec', async () => {
    const service = unit('seatctl-watch.service');
    const [exec] = service.Service!.ExecStart!;
    expect(exec).toMatch(/release-expired-locks --watch --quiet --metrics 9465$/);
    const app = await makeApp();
    // The unit's port may be taken on this machine: the same commands on a free one.
    const port = String(await freePort());
    const local = (text: string) => substitute(text, app).replaceAll('9465', port);
    const [signal] = service.Service!.KillSignal!;
    const stopWithin = Number(service.Service!.TimeoutStopSec![0]) * 1000;
    const env = (service.Service!.Environment ?? []).map(local);
    const sweeper = start('env', ['-i', 'PATH=/usr/bin:/bin', ...env, '/bin/sh', '-c', `exec ${local(exec!)}`], {
      cwd: local(service.Service!.WorkingDirectory![0]!),
      group: true,
    });
    // ExecStartPost: systemd reports the service started once this succeeds (curl retries until /readyz is 200).
    const [post] = service.Service!.ExecStartPost!;
    const ready = await run('/bin/sh', ['-c', local(post!)], { timeoutMs: Number(service.Service!.TimeoutStartSec![0]) * 1000 });
    expect(ready.code, ready.stderr).toBe(0);
    await sweeper.waitForLine('released 19 expired locks');
    expect(sweeper.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d released 19 expired locks\n$/);
    // The liveness probe: curl succeeds, so nothing is restarted.
    const health = unit('seatctl-watch-health.service');
    const probe = /curl .*healthz/.exec(health.Service!.ExecStart![0]!)![0];
    const alive = await run('/bin/sh', ['-c', local(probe)]);
    expect(alive.code, alive.stderr).toBe(0);
    expect(JSON.parse(alive.stdout)).toMatchObject({ status: 'ok' });
    expect(unit('seatctl-watch-health.timer').Timer!.OnUnitActiveSec).toEqual(['30']);
    const stopping = Date.now();
    sweeper.signal(signal as NodeJS.Signals);
    expect((await sweeper.finished()).code).toBe(0);
    // The bound is the unit's own: systemd kills the service once TimeoutStopSec has passed.
    expect(Date.now() - stopping).toBeLessThan(stopWithin);
    // The probe of a stopped sweeper fails: the timer's service would restart it.
    expect((await run('/bin/sh', ['-c', local(probe)])).code).not.toBe(0);
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('every unit passes systemd-analyze verify', async () => {
    const app = await makeApp();
    const dir = tempDir('seatctl-units-');
    const names = ['seatctl-release.service', 'seatctl-release.timer', 'seatctl-watch.service', 'seatctl-watch-health.service', 'seatctl-watch-health.timer'];
    for (const name of names) writeFileSync(join(dir, name), substitute(readFileSync(join(EXAMPLES, name), 'utf8'), app));
    const result = await run('/usr/bin/systemd-analyze', ['verify', ...names.map((name) => join(dir, name))], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
  });
});

/** The documents of a YAML file, parsed by Debian's python3-yaml (a kept parser; the test is skipped without it). */
const yamlParser = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import yaml']).status === 0;
function parseYaml(file: string): any[] {
  const result = spawnSync('/usr/bin/python3', ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

describe.skipIf(!yamlParser)('examples/kubernetes-sweeper.yaml', () => {
  it('is a Deployment whose probes, port, signal handling and grace period fit the sweeper it runs', async () => {
    const docs = parseYaml(join(EXAMPLES, 'kubernetes-sweeper.yaml'));
    expect(docs).toHaveLength(1);
    const deployment = docs[0];
    expect(deployment).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment' });
    const { spec } = deployment;
    expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    const pod = spec.template.spec;
    const [container] = pod.containers;
    const args: string[] = container.command;
    expect(args.slice(0, 3)).toEqual(['./node_modules/.bin/seatctl', 'release-expired-locks', '--watch']);
    const listen = args[args.indexOf('--metrics') + 1]!;
    expect(listen).toBe(`0.0.0.0:${container.ports[0].containerPort}`);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: container.ports[0].name });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: container.ports[0].name });
    expect(container.env[0]).toMatchObject({ name: 'DATABASE_URL' });
    expect(spec.template.metadata.annotations['prometheus.io/port']).toBe(String(container.ports[0].containerPort));

    // The container's command, run here (the pod's port on a free local one): the probes answer 200,
    // and SIGTERM ends it with 0 well within terminationGracePeriodSeconds.
    const app = await makeApp();
    const port = await freePort();
    const command = args.map((arg) => (arg === listen ? `127.0.0.1:${port}` : arg));
    const sweeper = start('env', ['-i', 'PATH=/usr/bin:/bin', `DATABASE_URL=${join(app, 'seatctl.db')}`, ...command], { cwd: app });
    const probe = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    await sweeper.waitFor('the note with the address', () => sweeper.stdout.includes('"type":"note"'));
    await sweeper.waitFor('a cycle', () => sweeper.stdout.includes('"type":"cycle"'));
    expect(await probe(container.readinessProbe.httpGet.path)).toBe(200);
    expect(await probe(container.livenessProbe.httpGet.path)).toBe(200);
    const stopping = Date.now();
    sweeper.signal('SIGTERM');
    expect((await sweeper.finished()).code).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
    for (const line of sweeper.stdout.trim().split('\n')) expect(JSON.parse(line)).toHaveProperty('level');
  });
});

describe('examples/ pre-start hooks', () => {
  it('prestart.sh migrates, releases what expired while the server was down, then becomes the server', async () => {
    const app = await makeApp();
    copyFileSync(join(EXAMPLES, 'prestart.sh'), join(app, 'prestart.sh'));
    const result = await likeCron(`${join(app, 'prestart.sh')} node server.js`);
    expect(result.code, result.stderr).toBe(0);
    // migrate --quiet: a pre-start prints nothing when the schema is up to date.
    expect(result.stdout).toBe('Total locks released: 19\nserver started\n');
    expect(result.stderr).toBe('');
  });

  it("package.json's prestart entry runs before npm start", async () => {
    const app = await makeApp();
    copyFileSync(join(EXAMPLES, 'package.json'), join(app, 'package.json'));
    const result = await likeCron(`cd ${app} && npm start --silent`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('Total locks released: 19\nserver started\n');
  });
});
