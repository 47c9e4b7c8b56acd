import { SeatctlError } from '../errors.js';
import { checkOneStoredExpiry } from './data-checks.js';
import { fitMapping } from './mapping-check.js';
import { guard, type CallOptions, type SeatDatabase } from './open.js';
import { ensureSchema } from './schema.js';
import { SeatStore } from './seat-store.js';

const stores = new WeakMap<SeatDatabase, Promise<SeatStore>>();

/**
 * The preamble every library operation shares, once: driver errors become
 * SeatctlErrors; the first use of a handle checks that the database is set
 * up (seatctl's schema, or its own tables beside an app's) and that the
 * mapping fits the live tables, and builds the statements.
 */
export function withSeats<T>(db: SeatDatabase, work: (store: SeatStore) => Promise<T>, call: CallOptions = {}): Promise<T> {
  return guard(db, async () => work(await readyStore(db)), call);
}

function readyStore(db: SeatDatabase): Promise<SeatStore> {
  let ready = stores.get(db);
  if (ready === undefined) {
    ready = prepare(db);
    stores.set(db, ready);
    ready.catch(() => stores.delete(db));
  }
  return ready;
}

async function prepare(db: SeatDatabase): Promise<SeatStore> {
  await ensureSchema(db);
  if (db.mapping.owned) return new SeatStore(db.mapping, db.engine, db.knex);
  const fit = await fitMapping(db.knex, db.engine.name, db.mapping);
  const store = new SeatStore(fit.mapping, db.engine, db.knex);
  const problem =
    fit.findings.find((finding) => finding.level === 'error') ?? (await checkOneStoredExpiry(db.knex, store));
  if (problem !== undefined) {
    throw new SeatctlError(
      'schema',
      `the mapping in ${db.mapping.source} does not fit ${db.target.display}: ${problem.message}; run seatctl doctor for the full report`,
    );
  }
  return store;
}
