// One process at a time per state directory. The store keeps uncommitted
// writes and counters in memory, so a second process writing the same LMDB
// environment would lose updates and hand out the same ids twice (found by a
// hostile review of issue #14). The lock is a file created exclusively and
// naming its owner's pid; a lock whose owner is gone is taken over.
import fs from 'node:fs';
import nodePath from 'node:path';

const LOCK_FILE = 'quickvat.lock';

export class StateDirInUse extends Error {
  override name = 'StateDirInUse';
}

/** Takes the directory's lock; throws StateDirInUse naming the directory and the owner. Returns the release function. */
export function lockStateDir(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = nodePath.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new StateDirInUse(`state directory ${dir} is in use by process ${owner}; one process at a time may open it`);
      }
      // Stale: its owner died (SIGKILL leaves the file behind).
      fs.rmSync(file, { force: true });
    }
  }
  throw new StateDirInUse(`state directory ${dir} could not be locked (another process took it at the same moment)`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
