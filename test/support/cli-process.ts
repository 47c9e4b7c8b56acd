// The real seatctl binary as a running process a test can watch and act on
// while it runs (terminate its backend, lock a table under it), then await.
// The process itself is processes.ts's Child: it dies with the test.
import { startCli as startChild, type CliResult } from './cli.js';

export interface RunningCli {
  readonly stdout: string;
  readonly stderr: string;
  /**
   * Resolves once `condition` holds: a condition on the output is checked
   * whenever the child writes; one that asks the database is polled.
   * Rejects when the child exits first, or at the deadline.
   */
  until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  /** The process's end; it is killed (and this rejects) if it outlives `timeoutMs`. */
  done: Promise<CliResult>;
}

export function startCli(args: readonly string[], timeoutMs = 60_000): RunningCli {
  const child = startChild(args);
  return {
    get stdout() {
      return child.stdout;
    },
    get stderr() {
      return child.stderr;
    },
    async until(condition, what, waitMs = 20_000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const holds = condition();
        if (typeof holds === 'boolean') {
          // On the output alone: wake on each write.
          await child.waitFor(what, () => condition() as boolean, Math.max(deadline - Date.now(), 0));
          return;
        }
        if (await holds) return;
        if (!child.running) throw new Error(`${child.label} ended before ${what}\n${child.output()}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${child.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    done: child.finished(timeoutMs),
  };
}

/** The JSON Lines records written so far, without a last line still on its way. */
export function completeRecords(stdout: string): Array<Record<string, any>> {
  return stdout
    .slice(0, stdout.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}
