import { defineConfig } from 'vitest/config';

// Two projects: `unit` (fast, no servers, beside the source) and `e2e` (against the local system that
// `npm start` runs; test/ground/global-setup.ts starts it, or uses the cluster KUBECONFIG names).
export default defineConfig({
  test: {
    reporters: ['default', './test/ground/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{operator,enforcer,contract,crds,cli,test}/**/*.test.ts'],
          exclude: ['test/e2e/**', 'node_modules/**'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['./test/ground/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
