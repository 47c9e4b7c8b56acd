import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests spawn the real binary and real database servers: give them time,
    // but never forever. Generous, because a busy machine makes them slower,
    // not wrong (the slowest ordinary test took 23 s with a busy core and a
    // second test suite on a 2-core machine); what they wait for inside has
    // its own, shorter deadline that fails with the child's output.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
