// Knex's dialect classes are not part of its typed API; seatctl extends two of
// them (see src/db/sqlite.ts) and only needs them as constructors.
declare module 'knex/lib/dialects/better-sqlite3/index.js' {
  const Client_BetterSQLite3: new (config: unknown) => object;
  export default Client_BetterSQLite3;
}

declare module 'knex/lib/dialects/sqlite3/execution/sqlite-transaction.js' {
  const Transaction_Sqlite: new (...args: unknown[]) => object;
  export default Transaction_Sqlite;
}
