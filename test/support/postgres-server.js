// Starts a throwaway PostgreSQL cluster for the tests and the benchmark: a new
// data directory under the system temp dir, listening on 127.0.0.1 on a free
// port, deleted on stop. Plain JavaScript so that bench/ can use it unbuilt.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

/** pg_ctl's arguments to start a cluster of the tests on 127.0.0.1:`port`, its socket and log in `dir`. */
function startArgs(data, dir, port, options) {
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c max_connections=200',
    ...(options.fast ? ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'] : []),
  ];
  return ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', settings.join(' '), 'start'];
}

/** The directory holding initdb, pg_ctl and postgres, or undefined when the server isn't installed. */
export function findServerBinaries() {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  return candidates.find((dir) => ['initdb', 'pg_ctl', 'postgres'].every((tool) => existsSync(join(dir, tool))));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * @param {{ fast?: boolean }} options fast: no fsync (tests); the benchmark keeps the defaults.
 * @returns {Promise<{ adminUrl: string, version: string, stop: () => void }>}
 */
export async function startPostgres(options = {}) {
  const bin = findServerBinaries();
  if (bin === undefined) throw new Error('PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed');
  // PostgreSQL refuses to run as root: run it as the postgres user then.
  const asRoot = process.getuid?.() === 0;
  const run = (tool, args) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
    const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) {
      throw new Error(
        `${tool} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout || result.error}`,
      );
    }
    return result.stdout;
  };

  const dir = mkdtempSync(join(tmpdir(), 'seatctl-pg-'));
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  const data = join(dir, 'data');
  run('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const port = await freePort();
  const start = () => run('pg_ctl', startArgs(data, dir, port, options));
  start();
  const version = run('postgres', ['--version']).trim();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    version,
    stop,
    port,
    password,
    /** Stops the server but keeps its data, as an outage would. */
    pause: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    /** Starts it again on the same port. */
    resume: start,
  };
}

/**
 * The directory holding pg_basebackup beside pg_ctl and postgres: the server
 * binaries' own directory, also when only links to some of them are on PATH.
 */
export function findStandbyBinaries() {
  const bin = findServerBinaries();
  if (bin === undefined) return undefined;
  const dirs = [bin, dirname(realpathSync(join(bin, 'pg_ctl')))];
  return dirs.find((dir) => ['pg_basebackup', 'pg_ctl', 'postgres'].every((tool) => existsSync(join(dir, tool))));
}

/**
 * A hot standby of a cluster that startPostgres started: a pg_basebackup over
 * the replication connection the primary's pg_hba allows (initdb's default),
 * started on its own free port with the primary's settings. promote() makes
 * it a primary; stop() stops it and deletes its data.
 * @param {{ port: number, password: string }} primary
 * @param {{ fast?: boolean }} options as the primary was started
 * @returns {Promise<{ adminUrl: string, port: number, promote: () => void, stop: () => void }>}
 */
export async function startStandby(primary, options = {}) {
  const bin = findStandbyBinaries();
  if (bin === undefined) throw new Error('PostgreSQL server binaries (pg_basebackup, pg_ctl, postgres) are not installed');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'seatctl-pg-standby-'));
  // The password travels in a file, never on a command line.
  const passfile = join(dir, 'pgpass');
  writeFileSync(passfile, `127.0.0.1:${primary.port}:*:postgres:${primary.password}\n`, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    chownSync(passfile, uid, gid);
  }
  const run = (tool, args) => {
    const argv = ['env', `PGPASSFILE=${passfile}`, join(bin, tool), ...args];
    const [cmd, rest] = asRoot ? ['runuser', ['-u', 'postgres', '--', ...argv]] : [argv[0], argv.slice(1)];
    const result = spawnSync(cmd, rest, { encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) {
      throw new Error(`${tool} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout || result.error}`);
    }
    return result.stdout;
  };
  const data = join(dir, 'data');
  let started = false;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      if (started) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    const port = await freePort();
    started = true;
    // -w: returns once the standby accepts (read-only) connections. The same
    // settings as the primary: a standby refuses fewer connections than it has.
    run('pg_ctl', startArgs(data, dir, port, options));
    return {
      adminUrl: `postgres://postgres:${primary.password}@127.0.0.1:${port}/postgres`,
      port,
      promote: () => run('pg_ctl', ['-D', data, '-w', '-t', '60', 'promote']),
      stop,
    };
  } catch (error) {
    try {
      stop();
    } catch {
      // pg_ctl stop fails when the start did: the error worth showing is the first one.
    }
    throw error;
  }
}
