// Every child process a test starts is started here. Each one is recorded and
// killed (SIGKILL; its whole process group when it has one) as soon as the test
// that started it ends, whether it passed, failed or timed out; one started
// outside a test dies when its file ends, and none outlives the test worker.
// Waiting for a child means waiting for something it printed, or for its exit,
// with a deadline that fails with everything it printed so far: never a sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, TestRunner } from 'vitest';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StartOptions {
  /** The child's whole environment (default: the runner's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed, unless `keepStdinOpen`. */
  input?: string;
  /** Leave stdin open for `write` and `endInput`. */
  keepStdinOpen?: boolean;
  /** Start the child in its own process group (a shell and whatever it starts), and kill the group. */
  group?: boolean;
  /** How failure messages name the child (default: the command line). */
  label?: string;
}

type Stream = 'stdout' | 'stderr';

/** How long a wait for a child lasts by default: far longer than a healthy child needs, even on a busy machine. */
export const DEFAULT_WAIT_MS = 30_000;

const live = new Set<Child>();

export class Child {
  readonly process: ChildProcess;
  readonly label: string;
  /** Started inside a test (killed when it ends) or outside one (killed when the file ends). */
  readonly inTest: boolean;
  readonly startedAt = Date.now();
  private lastOutputAt = this.startedAt;
  stdout = '';
  stderr = '';
  /** Complete lines written so far, per stream. */
  readonly lines: Record<Stream, number> = { stdout: 0, stderr: 0 };
  /** Resolves when the child has exited and its streams are closed; never rejects. */
  readonly exited: Promise<Exit>;
  private result: Exit | undefined;
  /** Resolves when the process itself has ended (its streams may outlive it in a grandchild). */
  private readonly ended: Promise<void>;
  private readonly group: boolean;
  private readonly watchers = new Set<() => void>();

  constructor(command: string, args: readonly string[], options: StartOptions = {}) {
    this.label = options.label ?? [command, ...args].join(' ').slice(0, 200);
    this.group = options.group ?? false;
    this.inTest = TestRunner.getCurrentTest() !== undefined;
    this.process = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: this.group,
    });
    live.add(this);
    for (const stream of ['stdout', 'stderr'] as const) {
      this.process[stream]!.setEncoding('utf8').on('data', (chunk: string) => {
        this[stream] += chunk;
        this.lastOutputAt = Date.now();
        for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) this.lines[stream]++;
        this.notify();
      });
    }
    this.ended = new Promise((resolve) => {
      this.process.on('exit', () => resolve());
      this.process.on('error', () => resolve());
    });
    this.exited = new Promise<Exit>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.result) return;
        this.result = { code, signal, stdout: this.stdout, stderr: this.stderr };
        live.delete(this);
        resolve(this.result);
        this.notify();
      };
      this.process.on('close', done);
      // A command that can't be started at all (ENOENT) closes without output.
      this.process.on('error', (error) => {
        this.stderr += `${error.message}\n`;
        done(null, null);
      });
    });
    this.process.stdin!.on('error', () => {}); // a child that exits before reading its input
    if (options.input !== undefined) this.process.stdin!.write(options.input);
    if (!options.keepStdinOpen) this.process.stdin!.end();
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return this.result === undefined;
  }

  write(text: string): void {
    this.process.stdin!.write(text);
  }

  endInput(): void {
    this.process.stdin!.end();
  }

  /** Sends a signal to the child, or to its whole group. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      if (this.group) process.kill(-this.pid, signal);
      else this.process.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /**
   * SIGKILL, and wait until it is gone. A grandchild outside its group that
   * still holds its output pipes does not keep the wait going: they are closed.
   */
  async kill(): Promise<Exit> {
    this.signal('SIGKILL');
    await this.ended;
    for (const stream of [this.process.stdin, this.process.stdout, this.process.stderr]) stream?.destroy();
    return this.exited;
  }

  /**
   * Resolves once `condition` holds, checked whenever the child writes and
   * when it exits. Fails, with the child's output so far, when it exits
   * without the condition holding or when `timeoutMs` has passed.
   */
  waitFor(what: string, condition: (child: Child) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let holds: boolean;
        try {
          holds = condition(this);
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (holds) {
          finish();
          resolve();
        } else if (!this.running) {
          finish();
          reject(new Error(`${this.label} exited (${this.exitDescription()}) before ${what}\n${this.output()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.output()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /** The first complete line on a stream that matches, once it has been written. */
  async waitForLine(
    match: string | RegExp,
    options: { stream?: Stream; timeoutMs?: number } = {},
  ): Promise<string> {
    const stream = options.stream ?? 'stdout';
    const test = (line: string) => (typeof match === 'string' ? line.includes(match) : match.test(line));
    let found: string | undefined;
    await this.waitFor(
      `a line matching ${String(match)} on ${stream}`,
      () => (found = completeLines(this[stream]).find(test)) !== undefined,
      options.timeoutMs,
    );
    return found!;
  }

  /** Waits until the child has written its first complete line, on either stream. */
  async firstOutput(timeoutMs?: number): Promise<void> {
    await this.waitFor('its first line of output', (c) => c.lines.stdout + c.lines.stderr > 0, timeoutMs);
  }

  /** Waits for the exit; a child still running after `timeoutMs` is killed, and the wait fails with its output. */
  async finished(timeoutMs = DEFAULT_WAIT_MS): Promise<Exit> {
    try {
      await this.waitFor('its exit', (c) => !c.running, timeoutMs);
    } catch (error) {
      if (!this.running) return this.result!;
      await this.kill();
      throw new Error(`${this.label} did not end within ${timeoutMs} ms and was killed\n${this.output()}`, {
        cause: error,
      });
    }
    return this.result!;
  }

  /** What the child printed so far, for failure messages. */
  output(): string {
    const tail = (text: string) => (text.length > 4000 ? `…${text.slice(-4000)}` : text);
    const count = `${this.lines.stdout} lines on stdout and ${this.lines.stderr} on stderr, ` +
      `the last ${Math.round((Date.now() - this.lastOutputAt) / 1000)} s ago`;
    return `${count}\nstdout: ${tail(this.stdout)}\nstderr: ${tail(this.stderr)}`;
  }

  private exitDescription(): string {
    return this.result?.signal ? `signal ${this.result.signal}` : `code ${this.result?.code}`;
  }

  private notify(): void {
    for (const check of [...this.watchers]) check();
  }
}

/** The complete lines of a stream's text so far (the last one may still be on its way). */
export function completeLines(text: string): string[] {
  const end = text.lastIndexOf('\n');
  return end === -1 ? [] : text.slice(0, end).split('\n');
}

/** Starts a child; see `Child`. */
export function start(command: string, args: readonly string[], options: StartOptions = {}): Child {
  return new Child(command, args, options);
}

/** Runs a child to its end; kills it and fails with its output if it runs longer than `timeoutMs`. */
export function run(
  command: string,
  args: readonly string[],
  options: StartOptions & { timeoutMs?: number } = {},
): Promise<Exit> {
  return start(command, args, options).finished(options.timeoutMs);
}

async function killAll(which: (child: Child) => boolean): Promise<void> {
  const doomed = [...live].filter(which);
  await Promise.all(doomed.map((child) => child.kill()));
}

afterEach(() => killAll((child) => child.inTest));
afterAll(() => killAll(() => true));

// A worker that ends any other way still takes its children with them: on its exit; when the
// runner that forked it goes away; and on Ctrl-C or a kill, which children in a process group of
// their own would not receive (the signal then does what it would have done: once our listener
// is gone, it is raised again unless someone else listens).
const killEveryChild = () => {
  for (const child of live) child.signal('SIGKILL');
};
process.on('exit', killEveryChild);
process.on('disconnect', killEveryChild);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killEveryChild();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}
