// `npm run bench`: every suite, one after another, in one process.
import { runEngineBench } from './engine.bench.js';
import { runKernelBench } from './kernel.bench.js';
import { runBlocksBench } from './blocks.bench.js';
import { runZygoteBench } from './zygote.bench.js';
import { runVatDataBench } from './vat-data.bench.js';
import { runUpgradeBench } from './upgrade.bench.js';
import { runBundlesBench } from './bundles.bench.js';
import { runShadowBench } from './shadow.bench.js';
import { runReplicaBench } from './replica.bench.js';
import { runPreflightBench } from './preflight.bench.js';
import { runVariantBench } from './variant.bench.js';
import { runExoBench } from './exo.bench.js';
import { runFastPathsBench } from './fast-paths.bench.js';
import { runGcBench, runGcSweepBench } from './gc.bench.js';

const suites: Record<string, () => void | Promise<void>> = {
  variant: runVariantBench,
  engine: runEngineBench,
  kernel: runKernelBench,
  blocks: runBlocksBench,
  zygote: runZygoteBench,
  'vat-data': runVatDataBench,
  upgrade: runUpgradeBench,
  bundles: runBundlesBench,
  shadow: runShadowBench,
  replica: runReplicaBench,
  exo: runExoBench,
  'fast-paths': runFastPathsBench,
  preflight: runPreflightBench,
  gc: runGcBench,
  'gc-sweep': runGcSweepBench,
};

const only = process.argv.slice(2);
for (const [name, run] of Object.entries(suites)) {
  if (only.length === 0 || only.includes(name)) await run();
}
