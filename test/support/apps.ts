// The real apps under test/apps (Django from Debian's python3-django, Rails from
// ruby-activerecord): they create their databases, write through their ORMs and
// read back. Every call spawns the app once and parses its one JSON document.
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TestEngine } from './engines.js';
import { tempDir } from './engines.js';

export type AppName = 'django' | 'rails';

const APPS: Record<AppName, { interpreter: string; script: string; probe: string[]; packages: string }> = {
  django: {
    interpreter: '/usr/bin/python3',
    script: fileURLToPath(new URL('../apps/django/app.py', import.meta.url)),
    probe: ['-c', 'import django, psycopg2'],
    packages: 'python3-django python3-psycopg2',
  },
  rails: {
    interpreter: '/usr/bin/ruby',
    script: fileURLToPath(new URL('../apps/rails/app.rb', import.meta.url)),
    probe: ['-e', 'require "active_record"; require "sqlite3"; require "pg"'],
    packages: 'ruby-activerecord ruby-sqlite3 ruby-pg',
  },
};

/** Why an app can't run here, or null. Under CI=true a missing framework is a failure, not a skip. */
export function appSkipReason(app: AppName): string | null {
  const { interpreter, probe, packages } = APPS[app];
  const missing =
    !existsSync(interpreter) || spawnSync(interpreter, probe, { stdio: 'ignore', timeout: 30_000 }).status !== 0;
  if (!missing) return null;
  const reason = `${app} is not installed for ${interpreter} (Debian: apt-get install ${packages})`;
  if (process.env.CI === 'true') throw new Error(`CI must run the ${app} tests, but ${reason}`);
  return reason;
}

/** The app's URL form for a database: sqlite:///abs/path or the PostgreSQL URL as is. */
function appUrl(url: string): string {
  return url.startsWith('postgres') ? url : `sqlite:///${url.replace(/^\/+/, '')}`;
}

/** Runs one app subcommand against a database; resolves with its JSON output. */
export function runApp<T = any>(app: AppName, url: string, args: readonly string[], timeoutMs = 60_000): Promise<T> {
  const { interpreter, script } = APPS[app];
  return new Promise((resolve, reject) => {
    execFile(
      interpreter,
      [script, ...args],
      { env: { ...process.env, APP_DATABASE_URL: appUrl(url), PYTHONDONTWRITEBYTECODE: '1' }, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${app} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
        else {
          try {
            resolve(JSON.parse(stdout) as T);
          } catch {
            reject(new Error(`${app} ${args.join(' ')} printed no JSON: ${stdout}\n${stderr}`));
          }
        }
      },
    );
  });
}

const templates = new Map<string, Promise<string>>();

/**
 * A new database created by the app's own migrations. The app migrates a
 * template once per engine and test file; each database is a copy of it
 * (a file copy, or CREATE DATABASE … TEMPLATE).
 */
export async function newAppDatabase(app: AppName, engine: TestEngine): Promise<string> {
  const key = `${app}:${engine.name}`;
  let template = templates.get(key);
  if (template === undefined) {
    template = (async () => {
      const url = await engine.newDatabaseUrl();
      await runApp(app, url, ['migrate']);
      return url;
    })();
    templates.set(key, template);
  }
  const source = await template;
  if (engine.name === 'sqlite') {
    const copy = join(tempDir(), 'app.db');
    copyFileSync(source, copy);
    return copy;
  }
  const target = await engine.newDatabaseUrl();
  const name = new URL(target).pathname.slice(1);
  const admin = new URL(target);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE "${name}"`);
    await client.query(`CREATE DATABASE "${name}" TEMPLATE "${new URL(source).pathname.slice(1)}"`);
  } finally {
    await client.end();
  }
  return target;
}
