// README's Library example is code users paste: it must type-check against
// the package's own declarations, as a TypeScript project would compile it.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { tempDir } from './support/engines.js';
import { run } from './support/processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it("README's Library example type-checks against the package (strict, ES module)", { timeout: 120_000 }, async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const library = readme.slice(readme.indexOf('## Library'));
  const example = /```ts\n([\s\S]*?)```/.exec(library)?.[1];
  expect(example, 'a ts block in the Library section').toBeDefined();
  const app = tempDir('seatctl-readme-');
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(ROOT, join(app, 'node_modules', 'seatctl'));
  symlinkSync(join(ROOT, 'node_modules', '@types'), join(app, 'node_modules', '@types'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(app, 'example.ts'), example!);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], skipLibCheck: true },
      files: ['example.ts'],
    }),
  );
  const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { timeoutMs: 110_000 });
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.code).toBe(0);
});
