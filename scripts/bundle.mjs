// `npm run build` runs this after tsc: esbuild bundles seatctl and the pure-JS
// packages it uses (Knex above all, a few hundred modules) into a few files,
// which Node loads several times faster than the same modules one by one.
//
//   dist/cli.cjs   the command line (bin/seatctl.cjs loads it with a V8 code cache)
//   dist/lib/      the library, what `import … from 'seatctl'` loads: ESM, one
//                  chunk per engine, so an app on PostgreSQL never loads the
//                  SQLite driver and the other way round
//
// Native and optional packages stay outside, loaded from node_modules.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const external = [
  'better-sqlite3',
  'pg',
  'pg-native',
  'pg-query-stream',
  'prom-client',
  'pino',
  // Knex's other dialects, which seatctl never loads, and their drivers.
  'sqlite3',
  ...['cockroachdb', 'mssql', 'mysql', 'mariadb', 'mysql2', 'oracle', 'oracledb', 'pgnative', 'redshift'].map((d) => `./${d}`),
];
const common = { bundle: true, platform: 'node', target: 'node20', minify: true, external, logLevel: 'warning' };

// The chunks' names carry a hash of their content: no stale chunk is left behind.
rmSync('dist/lib', { recursive: true, force: true });
await Promise.all([
  build({ ...common, entryPoints: ['src/cli/main.ts'], format: 'cjs', outfile: 'dist/cli.cjs' }),
  build({
    ...common,
    entryPoints: { index: 'src/index.ts' },
    format: 'esm',
    splitting: true,
    outdir: 'dist/lib',
    // Not minified: an app's stack traces through seatctl keep their names, and it loads as fast.
    minify: false,
    // Knex is CommonJS: its require() of the drivers needs a real require in an ES module.
    banner: { js: "import { createRequire as __seatctlRequire } from 'node:module'; const require = __seatctlRequire(import.meta.url);" },
  }),
]);
