import type { Command } from 'commander';
import { describeDatabase } from '../../db/open.js';
import { ownTablesSql } from '../../db/own-tables.js';
import { forceUnlockMigrations, migrate } from '../../db/schema.js';
import { usageError } from '../../errors.js';
import { databaseOptions, outputFor, withCommandDatabase } from '../context.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Create the database, or bring its schema up to date (safe to repeat)')
    .option('--json', 'JSON Lines: one "migration" record per migration applied, then a "summary"')
    .option('--force-unlock', 'first free the migration lock a crashed migrate left behind')
    .option('-q, --quiet', 'print nothing when the database is already up to date (pre-start scripts)')
    .option('--print-sql', "on an app's database: print the DDL of seatctl's own tables for a DBA to apply, change nothing")
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl migrate
  $ seatctl migrate --quiet && seatctl release-expired-locks --quiet && exec node server.js   (pre-start)`,
    )
    .action(async (options: { forceUnlock?: boolean; printSql?: boolean }, command: Command) => {
      const out = outputFor(command);
      if (options.printSql) {
        const { target, mapping } = describeDatabase(await databaseOptions(command));
        if (mapping.owned) {
          throw usageError("--print-sql prints seatctl's own tables for an app's database (one a config maps); on seatctl's own schema run seatctl migrate");
        }
        await out.write(ownTablesSql(target.engine, mapping));
        return;
      }
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
