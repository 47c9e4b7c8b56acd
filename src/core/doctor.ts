import { checkExpiryIndex, checkInstantValues, checkStatuses, type IndexAdvice } from '../db/data-checks.js';
import { fitMapping, type Finding } from '../db/mapping-check.js';
import { guard, type SeatDatabase } from '../db/open.js';
import { appliedOwnMigrations, OWN_MIGRATION_NAMES } from '../db/own-tables.js';
import { ensureSchema } from '../db/schema.js';
import { SeatStore } from '../db/seat-store.js';
import { SeatctlError } from '../errors.js';

export type { Finding, IndexAdvice };

export interface DoctorReport {
  /** The database, as messages name it (never with a password). */
  database: string;
  engine: 'sqlite' | 'postgres';
  preset: string;
  /** Where the mapping came from: a config file, or seatctl's default schema. */
  source: string;
  findings: Finding[];
  /** Whether an index serves the release's search for expired locks, and the one to add if not. */
  index?: IndexAdvice;
  /** No finding is an error: every command can run. */
  usable: boolean;
}

/**
 * Checks the mapping against the live database, line by line: tables and
 * columns, their types against the declared storage, a look at the stored
 * expiries and statuses, seatctl's own tables, and whether an index serves
 * the search for expired locks. Reads only.
 */
export async function doctor(db: SeatDatabase): Promise<DoctorReport> {
  return guard(db, async () => {
    const findings: Finding[] = [];
    const report = (index?: IndexAdvice): DoctorReport => ({
      database: db.target.display,
      engine: db.engine.name,
      preset: db.mapping.preset,
      source: db.mapping.source,
      findings,
      ...(index ? { index } : {}),
      usable: !findings.some((finding) => finding.level === 'error'),
    });

    if (db.mapping.owned) {
      try {
        await ensureSchema(db);
        findings.push({ level: 'ok', message: "seatctl's own schema is set up and up to date" });
      } catch (error) {
        if (!(error instanceof SeatctlError) || error.kind !== 'schema') throw error;
        findings.push({ level: 'error', message: error.message });
        return report();
      }
    }
    const fit = await fitMapping(db.knex, db.engine.name, db.mapping);
    findings.push(...fit.findings);
    if (!db.mapping.owned) {
      const applied = await appliedOwnMigrations(db.knex, db.engine.name, db.mapping);
      const missing = OWN_MIGRATION_NAMES.filter((name) => !applied?.includes(name));
      findings.push(
        missing.length === 0
          ? { level: 'ok', message: `seatctl's own tables are set up (${db.mapping.own.history}, ${db.mapping.own.runs})` }
          : {
              // The mapping is usable; the database is one migrate away from it.
              level: 'warning',
              message: `seatctl's own tables (${db.mapping.own.history}, ${db.mapping.own.runs}) are missing: run seatctl migrate before the other commands (it creates them and nothing else)`,
            },
      );
    }
    if (fit.findings.some((finding) => finding.level === 'error')) return report();

    const store = new SeatStore(fit.mapping, db.engine, db.knex);
    findings.push(...(await checkInstantValues(db.knex, store)));
    findings.push(...(await checkStatuses(db.knex, store)));
    const index = await checkExpiryIndex(db.knex, store);
    findings.push(
      index.served
        ? { level: 'ok', message: 'an index serves the search for expired locks' }
        : {
            level: 'warning',
            message: 'no index serves the search for expired locks: each release reads the whole seats table',
          },
    );
    return report(index);
  });
}
