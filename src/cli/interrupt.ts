/**
 * Ctrl-C and SIGTERM: the first asks the running command to stop at its next
 * safe point (between batches, or by rolling back); a command that doesn't
 * get there within a few seconds, or a second signal, ends the process at
 * once. Either way an unfinished transaction is rolled back by the database.
 */
const controller = new AbortController();
export const stopSignal: AbortSignal = controller.signal;
let received: NodeJS.Signals | undefined;

const FORCE_AFTER_MS = 3000;

/** The exit code a process stopped by this signal reports: 130 for SIGINT, 143 for SIGTERM. */
export function signalExitCode(signal: NodeJS.Signals | undefined = received): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

export function receivedSignal(): NodeJS.Signals | undefined {
  return received;
}

export function installSignalHandlers(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (received !== undefined) process.exit(signalExitCode(signal));
    received = signal;
    controller.abort();
    setTimeout(() => process.exit(signalExitCode(signal)), FORCE_AFTER_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
