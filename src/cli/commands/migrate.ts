import type { Command } from 'commander';
import { forceUnlockMigrations, migrate } from '../../db/schema.js';
import { outputFor, withCommandDatabase } from '../context.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Create the database, or bring its schema up to date (safe to repeat)')
    .option('--json', 'JSON Lines: one "migration" record per migration applied, then a "summary"')
    .option('--force-unlock', 'first free the migration lock a crashed migrate left behind')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl migrate
  $ seatctl migrate && seatctl release-expired-locks --quiet && exec node server.js   (pre-start)`,
    )
    .action(async (options: { forceUnlock?: boolean }, command: Command) => {
      const out = outputFor(command);
      const { applied } = await withCommandDatabase(command, { create: true }, async (db) => {
        if (options.forceUnlock) await forceUnlockMigrations(db);
        return migrate(db);
      });
      if (out.json) {
        for (const name of applied) await out.record({ type: 'migration', name });
        await out.record({ type: 'summary', applied: applied.length });
      } else if (applied.length === 0) {
        if (!out.quiet) await out.line('Database is up to date');
      } else {
        for (const name of applied) await out.line(`Applied migration ${name}`);
      }
    });
}
