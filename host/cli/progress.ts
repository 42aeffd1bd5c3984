// Progress for long work, on stderr: a live counter on a terminal, one summary
// line otherwise (so logs and pipes stay readable).
export function progress(label: string, total: number) {
  const tty = process.stderr.isTTY;
  let n = 0;
  return {
    tick() {
      n++;
      if (tty) process.stderr.write(`\r${label} ${n}/${total} ${'#'.repeat(Math.round((20 * n) / Math.max(total, 1))).padEnd(20, '.')}`);
    },
    done() {
      if (total === 0) return;
      process.stderr.write(tty ? '\n' : `${label}: ${n}/${total}\n`);
    },
  };
}
