// Mocha root hook plugin (.mocharc.json "require"): every temporary directory
// the tests make, and the processes they start (etcd, the CLI, Chromium)
// make, goes under one directory per run, removed when the run ends. Tests
// that SIGKILL a child, or fail half way, cannot clean up after themselves;
// before this, every run left tens of directories (stores, etcd data dirs)
// behind and a day of runs filled the disk.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = fs.mkdtempSync(path.join(os.tmpdir(), 'quickvat-test-run-'));
// os.tmpdir() reads TMPDIR at every call, and child processes inherit it.
process.env.TMPDIR = run;

export const mochaHooks = {
  afterAll(): void {
    fs.rmSync(run, { recursive: true, force: true });
  },
};
