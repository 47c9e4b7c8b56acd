import { Option, type Command } from 'commander';
import { assertSeedable, seedDemo, seedSynthetic } from '../../core/seed.js';
import { migrate } from '../../db/schema.js';
import { usageError } from '../../errors.js';
import { outputFor, withCommandDatabase } from '../context.js';
import { stopSignal } from '../interrupt.js';
import { plural, safe, thousands } from '../output.js';
import { countArg } from '../parse.js';
import { progressBar } from '../progress.js';

interface SeedCommandOptions {
  events?: number;
  seatsPerEvent?: number;
  expired?: number;
  active?: number;
  booked?: number;
  reset?: boolean;
}

const n = thousands;

export function registerSeed(program: Command): void {
  const count = (flags: string, description: string) => new Option(flags, description).argParser(countArg);
  program
    .command('seed')
    .description('Create the database if needed and load the demo event (or synthetic data at scale)')
    .addOption(count('--events <n>', 'synthetic: how many events ("Event 0001"…)'))
    .addOption(count('--seats-per-event <n>', 'synthetic: seats per event (rows of 20: A1…A20, B1…)'))
    .addOption(count('--expired <n>', 'synthetic: locks held by admin that have expired'))
    .addOption(count('--active <n>', 'synthetic: locks held by alice that are still valid'))
    .addOption(count('--booked <n>', 'synthetic: seats booked by bob'))
    .option('--reset', 'empty every table first')
    .option('--json', 'print the result as one JSON "summary" record')
    .addHelpText(
      'after',
      `
Examples:
  $ seatctl seed          the demo: "Taylor Swift - Eras Tour", 100 seats, 19 expired
                          locks (admin), 3 active locks (alice), 5 booked seats
  $ seatctl seed --reset --events 1000 --seats-per-event 1000 --expired 100000

Re-running restores the same state. Synthetic events replace events of the same name.`,
    )
    .action(async (options: SeedCommandOptions, command: Command) => {
      const out = outputFor(command);
      const synthetic = [options.events, options.seatsPerEvent, options.expired, options.active, options.booked].some(
        (value) => value !== undefined,
      );
      if (synthetic && (options.events === undefined || options.seatsPerEvent === undefined)) {
        throw usageError('a synthetic seed needs both --events and --seats-per-event');
      }
      await withCommandDatabase(command, { create: true }, async (db) => {
        assertSeedable(db);
        await migrate(db);
        if (!synthetic) {
          const demo = await seedDemo(db, { reset: options.reset });
          if (out.json) {
            await out.record({ type: 'summary', events: 1, ...demo });
          } else {
            await out.line(
              `Seeded ${safe(demo.event)}: ${plural(demo.seats, 'seat')}, ${demo.expired} expired locks (admin), ${demo.active} active locks (alice), ${demo.booked} booked`,
            );
          }
          return;
        }
        const started = performance.now();
        const progress = await progressBar('Seeding', options.events! * options.seatsPerEvent!);
        const result = await seedSynthetic(db, {
          events: options.events!,
          seatsPerEvent: options.seatsPerEvent!,
          expired: options.expired,
          active: options.active,
          booked: options.booked,
          reset: options.reset,
          signal: stopSignal,
          onProgress: progress?.update,
        }).finally(() => progress?.stop());
        const seconds = (performance.now() - started) / 1000;
        if (out.json) {
          await out.record({ type: 'summary', ...result, seconds: Math.round(seconds * 1000) / 1000 });
        } else {
          await out.line(
            `Seeded ${plural(result.seats, 'seat')} in ${plural(result.events, 'event')}: ${n(result.expired)} expired, ${n(result.active)} active, ${n(result.booked)} booked (${seconds.toFixed(1)} s)`,
          );
        }
      });
    });
}
