// Commands about the state directory and the tools beside it: snapshot
// list|size|verify, bench, demo.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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
  .description('stored images (pages each lists) and what the page store holds (each distinct page once)')
  .action(async () => {
    await withHost((host) => {
      const images = host.kernel.state.images;
      const rows = images.ids().map((image) => ({ image, pages: images.manifest(image)?.pageIndices.length ?? null }));
      const usage = images.usage();
      const lines = rows.map((r) => `${r.image.slice(0, 12)}…  ${r.pages === null ? 'whole image (stored before page sharing)' : `${r.pages} pages (${((r.pages * 4) / 1024).toFixed(1)} MiB)`}`);
      lines.push(`${usage.images} images share ${usage.pages} distinct pages: ${(usage.pageBytes / 1048576).toFixed(1)} MiB of pages, ${(usage.manifestBytes / 1024).toFixed(0)} KiB of manifests`);
      out(lines.join('\n'), { images: rows, usage });
    });
  });
snapshot
  .command('verify')
  .description('check every stored image: its id matches its content, and every page it lists is present and matches its hash')
  .action(async () => {
    await withHost((host) => {
      const images = host.kernel.state.images;
      const count = images.ids().length;
      const bar = progress('verifying images', count);
      const bad = images.verify(() => bar.tick());
      bar.done();
      if (bad.length) throw new UsageError(`${bad.length} problem(s) with stored images: ${bad.join('; ')}`);
      out(`${count} images verified`, { verified: count });
    });
  });

program
  .command('bench [suites...]')
  .description('run the benchmark suites (engine, kernel, zygote, vat-data, upgrade, fast-paths, ...); from a clone of the repository')
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
