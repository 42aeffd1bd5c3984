// Why bellard and not quickjs-ng: the same CPU-bound workload in each
// published build (through quickjs-emscripten's own API, so neither gets our
// instrumentation), in one run.
import { newQuickJSWASMModuleFromVariant } from 'quickjs-emscripten-core';
import bellard from '@jitl/quickjs-wasmfile-release-sync';
import ng from '@jitl/quickjs-ng-wasmfile-release-sync';
import { compare } from './harness.js';

const WORK = `(function(){let s=0; const m=new Map(); for(let i=0;i<30000;i++){ m.set('k'+(i%1000), i); s+= m.get('k'+(i%997))|0; }
  const a=[]; for(let i=0;i<10000;i++) a.push({x:i, y:String(i)}); a.sort((p,q)=>q.x-p.x); return s + JSON.stringify(a).length; })()`;

export async function runVariantBench(): Promise<void> {
  console.log('\n== QuickJS variant (published builds, same workload)');
  const [b, n] = await Promise.all([newQuickJSWASMModuleFromVariant(bellard as never), newQuickJSWASMModuleFromVariant(ng as never)]);
  const run = (mod: typeof b) => () => {
    const ctx = mod.newContext();
    ctx.unwrapResult(ctx.evalCode(WORK)).dispose();
    ctx.dispose();
  };
  await compare('CPU-bound workload: quickjs-ng vs bellard', { name: 'quickjs-ng', fn: run(n) }, { name: 'bellard (chosen)', fn: run(b) });
}
