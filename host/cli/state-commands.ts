// Commands about the state directory and the tools beside it: snapshot
// list|size|verify, bench, demo.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decompressImage, imageHash } from '../engine/index.js';
import { out, program, ROOT, UsageError, withHost } from './context.js';
import { progress } from './progress.js';

const snapshot = program.command('snapshot').description('memory images: list, size, verify');
snapshot
  .command('list')
  .description('each vat and the image it restores from')
  .action(async () => {
    await withHost((host) => {
      const rows = host.vats().map((v) => {
        const r = host.kernel.vatRecord(v.vatId);
        return { vatId: v.vatId, name: v.name, incarnation: r.incarnation, image: r.imageId, snapshotPos: r.snapshotPos, transcriptLength: r.transcriptLength };
      });
      out(rows.map((r) => `${r.vatId.padEnd(5)} ${r.name.padEnd(28)} inc ${r.incarnation}  image ${r.image.slice(0, 12)}…  replay ${r.transcriptLength - r.snapshotPos} deliveries`).join('\n'), rows);
    });
  });
snapshot
  .command('size')
  .description('stored image sizes')
  .action(async () => {
    await withHost((host) => {
      const rows = [...host.store.entries('img.')].map(([k, v]) => ({ image: k.slice(4), compressedBytes: (v as Uint8Array).length }));
      out(rows.map((r) => `${r.image.slice(0, 12)}…  ${(r.compressedBytes / 1024).toFixed(0)} KiB compressed`).join('\n') || 'no images', rows);
    });
  });
snapshot
  .command('verify')
  .description('decompress every stored image and check its content hash')
  .action(async () => {
    await withHost((host) => {
      const entries = [...host.store.entries('img.')];
      const bar = progress('verifying images', entries.length);
      const bad: string[] = [];
      for (const [k, v] of entries) {
        const id = k.slice(4);
        try {
          if (imageHash(decompressImage(v as Uint8Array)) !== id) bad.push(`${id}: content does not match its id`);
        } catch (err) {
          bad.push(`${id}: ${(err as Error).message}`);
        }
        bar.tick();
      }
      bar.done();
      if (bad.length) throw new UsageError(`${bad.length} damaged image(s): ${bad.join('; ')}`);
      out(`${entries.length} images verified`, { verified: entries.length });
    });
  });

program
  .command('bench [suites...]')
  .description('run the benchmark suites (engine, kernel, zygote, vat-data, upgrade); from a clone of the repository')
  .action((suites: string[]) => runScript(path.join(ROOT, 'dist', 'bench', 'run.js'), suites, 'the benchmarks ship with the repository, not the package: run `npm run bench` in a clone'));

program
  .command('demo')
  .description('the guided demo: install, fork, business, review, upgrade')
  .action(() => runScript(path.join(ROOT, 'dist', 'host', 'demo.js'), [], 'the demo is missing from this installation'));

function runScript(file: string, args: string[], missing: string): void {
  if (!fs.existsSync(file)) throw new UsageError(missing);
  const r = spawnSync(process.execPath, [file, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new UsageError(`${path.basename(file)} exited with ${r.status}`);
}
