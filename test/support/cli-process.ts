// The real seatctl binary as a running process a test can watch and act on
// while it runs (terminate its backend, lock a table under it), then await.
import { spawn } from 'node:child_process';
import { afterAll } from 'vitest';
import { BIN, cleanEnv, type CliResult } from './cli.js';

export interface RunningCli {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once `condition` holds, polled every few milliseconds; rejects at the deadline. */
  until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  /** The process's end; it is killed (and this rejects) if it outlives `timeoutMs`. */
  done: Promise<CliResult>;
}

const running = new Set<ReturnType<typeof spawn>>();
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

export function startCli(args: readonly string[], timeoutMs = 60_000): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`seatctl ${args.join(' ')} did not end within ${timeoutMs} ms\nstdout: ${output.stdout.slice(-2000)}\nstderr: ${output.stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout: output.stdout, stderr: output.stderr });
    });
  });
  return {
    get stdout() {
      return output.stdout;
    },
    get stderr() {
      return output.stderr;
    },
    async until(condition, what, waitMs = 20_000) {
      const deadline = Date.now() + waitMs;
      while (!(await condition())) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`seatctl ended before ${what}\nstdout: ${output.stdout.slice(-2000)}\nstderr: ${output.stderr}`);
        }
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${what}\nstdout: ${output.stdout.slice(-2000)}\nstderr: ${output.stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    done,
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
