import type { Command } from 'commander';
import { doctor } from '../../core/doctor.js';
import { SeatctlError } from '../../errors.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { safe } from '../output.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description("Check that seatctl can work on this database: the mapping against the live tables, the data, the index")
    .option('--json', 'JSON Lines: one "finding" record per check, then a "summary"')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl doctor
  $ seatctl --config /srv/app/seatctl.config.json doctor

Exit 0 when the database is usable (warnings, such as a missing index, included), 5 when it is not.`,
    )
    .action(async (_options: unknown, command: Command) => {
      const out = outputFor(command);
      const report = await withCommandDatabase(command, {}, (db) => doctor(db));
      if (out.json) {
        for (const finding of report.findings) await out.record({ type: 'finding', ...finding });
        await out.record({
          type: 'summary',
          database: report.database,
          engine: report.engine,
          preset: report.preset,
          source: report.source,
          usable: report.usable,
          index: report.index ? { served: report.index.served, sql: report.index.sql, idiom: report.index.idiom ?? null } : null,
        });
      } else {
        await out.line(`database: ${safe(report.database)} (${report.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`);
        await out.line(`mapping:  preset ${report.preset}, from ${safe(report.source)}`);
        const marks = { ok: out.style.green('✔'), warning: out.style.yellow('⚠'), error: out.style.red('✖') };
        for (const finding of report.findings) await out.line(`${marks[finding.level]} ${safe(finding.message)}`);
        if (report.index && !report.index.served) {
          const scan = report.index.plan.split(/\n|; /).find((line) => /Scan|SCAN|SEARCH/.test(line)) ?? report.index.plan;
          await out.line(`  the planner: ${safe(scan.trim())}`);
          await out.line(`  add it (SQL): ${report.index.sql}`);
          if (report.index.idiom) await out.line(`  or in ${report.index.idiom.label}:\n    ${report.index.idiom.text}`);
        }
        await out.line(report.usable ? out.style.bold('usable') : out.style.bold('not usable: fix the lines marked ✖'));
      }
      if (!report.usable) {
        const first = report.findings.find((finding) => finding.level === 'error')!;
        throw new SeatctlError('schema', `the database is not usable with this mapping: ${first.message}`);
      }
    });
}
