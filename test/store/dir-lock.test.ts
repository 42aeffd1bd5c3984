// One process at a time per state directory (found by a hostile review of
// issue #14: two CLI processes on one directory lost updates and handed out
// the same ids twice).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, StateDirInUse } from '../../host/index.js';

const STORE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'host', 'store', 'index.js');

describe('state directory lock', () => {
  it('refuses a second process, naming the directory and the owner; takes over after the owner dies', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-lock-'));
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { Store } from ${JSON.stringify(STORE)}; Store.open({ path: ${JSON.stringify(dir)} }); console.log('open'); setInterval(() => {}, 1000);`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      await assert.rejects(Host.open({ path: dir }), (err: Error) => err instanceof StateDirInUse && err.message === `state directory ${dir} is in use by process ${child.pid}; one process at a time may open it`);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const host = await Host.open({ path: dir });
      await host.close();
      assert.equal(fs.existsSync(path.join(dir, 'quickvat.lock')), false, 'close releases the lock');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
