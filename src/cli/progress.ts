/** Progress of a long operation, drawn on stderr. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** Below this many rows an operation is over before a bar would help. */
const WORTH_A_BAR = 20_000;

/**
 * A progress bar on stderr, or undefined: only when stderr is a terminal (never
 * in cron mail, pipes or files) and the operation is big. cli-progress is
 * loaded only then.
 */
export async function progressBar(label: string, total: number): Promise<Progress | undefined> {
  if (!process.stderr.isTTY || total < WORTH_A_BAR) return undefined;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {percentage}% {value}/{total}, {eta_formatted} left`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 10,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(Math.min(done, total)),
    stop: () => bar.stop(),
  };
}
