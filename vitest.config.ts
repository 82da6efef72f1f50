import { defineConfig } from 'vitest/config';

// Unit tests never touch the network; integration tests talk to the AWS emulator; e2e drives a real browser.
export default defineConfig({
  test: {
    projects: [
      // Hooks get the tests' budget: some prepare a run on the real data first (Prepare reads each file twice).
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          // Starts the AWS emulator unless TEXTSHIFT_AWS_ENDPOINT names one; fails the run when none can be reached.
          globalSetup: ['test/integration/setup/emulator.ts'],
        },
      },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 600_000, hookTimeout: 600_000 } },
    ],
  },
});
