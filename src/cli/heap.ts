/** Above this much live-and-dead JavaScript heap, a batch boundary collects. */
const COLLECT_ABOVE_BYTES = 24 * 1024 * 1024;

let collect: (() => void) | undefined;

/**
 * A full garbage collection when the heap has grown past 24 MB. A long
 * release allocates a little for every lock and V8 lets the old generation
 * grow to tens of megabytes before it collects; collecting at batch
 * boundaries keeps the peak memory flat instead. A release of a few thousand
 * locks never reaches the mark and pays for no collection at all (each costs
 * about 10 ms). node:v8 and node:vm load on the first collection only.
 */
export function collectGarbageIfLarge(): void {
  if (process.memoryUsage().heapUsed < COLLECT_ABOVE_BYTES) return;
  if (collect === undefined) {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    collect = process.getBuiltinModule('node:vm').runInNewContext('gc') as () => void;
  }
  collect();
}
