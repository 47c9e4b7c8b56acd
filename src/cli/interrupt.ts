/**
 * Ctrl-C and SIGTERM ask the running command to stop at its next safe point
 * (between batches, or by rolling back). Commands watch `stopSignal`; main.ts
 * receives the signals and ends the process if a command doesn't get there.
 */
const controller = new AbortController();
export const stopSignal: AbortSignal = controller.signal;
let received: NodeJS.Signals | undefined;

/** Asks the running command to stop; returns false when a stop was already asked for. */
export function requestStop(signal: NodeJS.Signals): boolean {
  if (received !== undefined) return false;
  received = signal;
  controller.abort();
  return true;
}

export function receivedSignal(): NodeJS.Signals | undefined {
  return received;
}

/** The exit code a process stopped by this signal reports: 130 for SIGINT, 143 for SIGTERM. */
export function signalExitCode(signal: NodeJS.Signals | undefined = received): number {
  return signal === 'SIGTERM' ? 143 : 130;
}
