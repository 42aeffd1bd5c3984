import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compressImage,
  decodeImage,
  decompressImage,
  encodeImage,
  GuestError,
  InstanceDiscarded,
  InstanceTrapped,
  MeterExhausted,
  Sandbox,
  SnapshotError,
  unmeteredBinary,
} from '../../host/engine/index.js';
import { WORKLOAD } from '../fixtures/engine-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'engine-child.js');

function runChild(args: string[], env: Record<string, string>, cwd: string): any {
  const out = execFileSync(process.execPath, [CHILD, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

describe('engine: determinism', () => {
  it('gives identical state hashes for the same code in two fresh instances', () => {
    const a = Sandbox.create({ identity: 'same' });
    const b = Sandbox.create({ identity: 'same' });
    assert.equal(a.stateHash(), b.stateHash());
    a.evaluate(WORKLOAD);
    b.evaluate(WORKLOAD);
    assert.equal(a.stateHash(), b.stateHash());
    // And the hash really covers state: one more step on one side changes it.
    a.evaluate('m.set("extra", 1)');
    assert.notEqual(a.stateHash(), b.stateHash());
  });

  it('gives identical state hashes across processes with different cwd, TZ and LANG', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cwd-'));
    const one = runChild(['hash'], { TZ: 'America/New_York', LANG: 'de_DE.UTF-8' }, tmp);
    const two = runChild(['hash'], { TZ: 'Asia/Kolkata', LANG: 'C', EXTRA_VAR: 'x'.repeat(100) }, '/');
    assert.equal(one.hash, two.hash);
    assert.equal(one.used, two.used);
    // The guest saw the logical clock in UTC, not the host's time or zone.
    assert.deepEqual(one.stamp.slice(0, 3), [0, 'Fri Feb 05 1971 00:00:00 GMT+0000', 0]);
    // Same in this process (the parent's TZ/LANG differ from both children).
    const here = Sandbox.create({ identity: 'child' });
    here.evaluate(WORKLOAD);
    assert.equal(here.stateHash(), one.hash);
  });

  it('seeds Math.random from the vat identity', () => {
    const draw = (s: Sandbox) => s.evaluate('[Math.random(), Math.random(), Math.random()]') as number[];
    const a = draw(Sandbox.create({ identity: 'vat-a' }));
    const a2 = draw(Sandbox.create({ identity: 'vat-a' }));
    const b = draw(Sandbox.create({ identity: 'vat-b' }));
    assert.deepEqual(a, a2);
    assert.notDeepEqual(a, b);
    for (const x of [...a, ...b]) assert.ok(x >= 0 && x < 1);
  });

  it('pins Date to the owner-set logical clock', () => {
    const s = Sandbox.create();
    assert.equal(s.evaluate('Date.now()'), 0);
    s.clockMs = 1_700_000_000_000;
    assert.equal(s.evaluate('new Date().toISOString()'), '2023-11-14T22:13:20.000Z');
    assert.equal(s.evaluate('new Date(2020, 0, 1).getTimezoneOffset()'), 0);
  });

  it('counts the same gas for a fixed workload across instances and forks', () => {
    const a = Sandbox.create({ identity: 'g' });
    const b = Sandbox.create({ identity: 'g' });
    a.evaluate(WORKLOAD);
    b.evaluate(WORKLOAD);
    assert.equal(a.lastUsed, b.lastUsed);
    assert.ok(a.lastUsed > 100_000n, `workload should cost real gas, got ${a.lastUsed}`);
    const image = a.snapshot();
    const work = 'let t = 0; for (const [k, v] of m) t += v.sq % 7; JSON.stringify([...m.keys()]).length + t';
    const [f1, f2] = Sandbox.fork(image, ['f', 'f']);
    const r1 = f1.evaluate(work);
    const r2 = f2.evaluate(work);
    assert.equal(r1, r2);
    assert.equal(f1.lastUsed, f2.lastUsed);
    // A plain restore (no reseed, so memory identical to the parent's) costs
    // exactly what the parent pays for the same work.
    const plain = Sandbox.restore(image);
    assert.equal(plain.evaluate(work), a.evaluate(work));
    assert.equal(plain.lastUsed, a.lastUsed);
  });
});

describe('engine: snapshot, restore, fork', () => {
  const SETUP = `
    globalThis.counter = (() => { let n = 0; return () => ++n; })();
    globalThis.map = new Map([['a', 1], ['b', { deep: [1, 2, 3] }]]);
    globalThis.weak = new WeakMap(); const key = {}; weak.set(key, 'w'); globalThis.key = key;
    globalThis.sym = Symbol('tag'); globalThis.tagged = { [sym]: 'yes' };
    class Vault { #secret; constructor(s) { this.#secret = s; } reveal() { return this.#secret; } }
    globalThis.vault = new Vault('s3cret');
    globalThis.done = Promise.resolve('resolved-before');
    let release; globalThis.later = new Promise((r) => { release = r; }); globalThis.release = release;
    counter(); counter();
  `;
  const PROBE = `(async () => [
    counter(), map.get('b').deep.length, weak.get(key), tagged[sym], vault.reveal(),
    await done, (release('resolved-after'), await later),
  ])()`;

  it('continues with globals, closures, Maps, classes and promises intact', () => {
    const s = Sandbox.create();
    s.evaluate(SETUP);
    const restored = Sandbox.restore(s.snapshot());
    assert.deepEqual(restored.evaluate(PROBE), [3, 3, 'w', 'yes', 's3cret', 'resolved-before', 'resolved-after']);
    // A snapshot of a restored sandbox works again.
    const again = Sandbox.restore(restored.snapshot());
    assert.equal(again.evaluate('counter()'), 4);
  });

  it('survives encode/decode and compression byte for byte', () => {
    const s = Sandbox.create();
    s.evaluate(SETUP);
    const image = s.snapshot();
    const bytes = encodeImage(image);
    assert.deepEqual(encodeImage(decodeImage(bytes)), bytes);
    assert.deepEqual(encodeImage(decompressImage(compressImage(image))), bytes);
    assert.equal(Sandbox.restore(decodeImage(bytes)).stateHash(), s.stateHash());
    // Sparse: far fewer bytes than the 16 MiB memory.
    assert.ok(bytes.length < s.memoryBytes / 4, `image ${bytes.length} bytes`);
  });

  it('keeps forks independent of their siblings and their parent', () => {
    const parent = Sandbox.create();
    parent.evaluate(SETUP);
    const image = parent.snapshot();
    const parentHash = parent.stateHash();
    const [a, b] = Sandbox.fork(image, ['a', 'b']);
    a.evaluate('map.set("a", 100); counter(); counter(); globalThis.onlyA = true');
    assert.deepEqual(b.evaluate('[map.get("a"), counter(), typeof onlyA]'), [1, 3, 'undefined']);
    assert.equal(a.evaluate('counter()'), 5);
    assert.equal(parent.stateHash(), parentHash);
    assert.deepEqual(parent.evaluate('[map.get("a"), typeof onlyA]'), [1, 'undefined']);
    // Different identities: their random streams diverge after the fork.
    assert.notEqual(a.evaluate('Math.random()'), b.evaluate('Math.random()'));
  });

  it('clones a sandbox: the same memory in an independent instance, the original untouched', () => {
    const parent = Sandbox.restore(Sandbox.create({ identity: 'p' }).snapshot());
    parent.evaluate(SETUP);
    parent.clockMs = 1234;
    const parentHash = parent.stateHash();
    const copy = parent.clone();
    assert.equal(copy.stateHash(), parentHash, 'a clone is byte-identical');
    assert.equal(copy.clockMs, 1234);
    // The same Math.random stream (a clone is not a fork with its own identity).
    assert.equal(copy.evaluate('Math.random()'), Sandbox.restore(parent.snapshot()).evaluate('Math.random()'));
    assert.deepEqual(copy.evaluate(PROBE), [3, 3, 'w', 'yes', 's3cret', 'resolved-before', 'resolved-after']);
    copy.evaluate('globalThis.big = "x".repeat(3e6); map.set("a", 100)');
    assert.equal(parent.stateHash(), parentHash, 'the original is untouched');
    assert.deepEqual(parent.evaluate('[map.get("a"), typeof big, counter()]'), [1, 'undefined', 3]);
    copy.dispose();
    // Only at a quiet point.
    parent.onSyscall = () => {
      assert.throws(() => parent.clone(), /mid-call|pending/);
      return 'ok';
    };
    parent.evaluate('__quickvat_syscall("x")');
  });

  it('restores in another process an image taken in this one, and vice versa', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-img-'));
    const file = path.join(tmp, 'image.bin');
    const wrote = runChild(['write-image', file], {}, tmp);
    const here = Sandbox.restore(decompressImage(fs.readFileSync(file)));
    assert.equal(here.stateHash(), wrote.hash);
    assert.equal(here.evaluate('String(acct.deposit(1n))'), '42');

    const mine = Sandbox.create({ identity: 'child' });
    mine.evaluate(WORKLOAD);
    fs.writeFileSync(file, compressImage(mine.snapshot()));
    const read = runChild(['read-image', file], {}, tmp);
    assert.equal(read.hash, mine.stateHash());
    assert.equal(read.deposit, '42');
  });

  it('refuses an image from a different wasm binary, naming both', () => {
    const image = Sandbox.create().snapshot();
    assert.throws(
      () => Sandbox.restore(image, { binary: unmeteredBinary() }),
      (err: Error) => err instanceof SnapshotError && /only restores on the binary that made it/.test(err.message),
    );
    const forged = decodeImage(encodeImage(image));
    const tampered = { ...forged, header: { ...forged.header, wasmSha256: 'f'.repeat(64) } };
    assert.throws(() => Sandbox.restore(tampered), /taken on wasm ffffffffffff/);
  });

  it('refuses damaged image bytes with a clear error', () => {
    const bytes = encodeImage(Sandbox.create().snapshot());
    assert.throws(() => decodeImage(bytes.subarray(0, bytes.length - 10)), /truncated or damaged/);
    assert.throws(() => decodeImage(Buffer.from('not an image at all')), /bad magic/);
    assert.throws(() => decompressImage(Buffer.from([1, 2, 3])), SnapshotError);
  });

  it('refuses to snapshot with jobs pending', () => {
    const s = Sandbox.create();
    s.onSyscall = () => {
      assert.throws(() => s.snapshot(), /mid-call|pending/);
      return 'ok';
    };
    s.evaluate('__quickvat_syscall("x")');
  });
});

describe('engine: limits end as typed errors', () => {
  const nextVatWorks = () => {
    const next = Sandbox.create();
    assert.equal(next.evaluate('[1, 2, 3].map((x) => x * 2).join()'), '2,4,6');
  };

  it('stops while(true){} with MeterExhausted and discards the instance', () => {
    const s = Sandbox.create();
    assert.throws(
      () => s.evaluate('while (true) {}', { budget: 5_000_000n }),
      (err: Error) => err instanceof MeterExhausted && err.budget === 5_000_000n && err.used >= 5_000_000n,
    );
    assert.equal(s.alive, false);
    assert.throws(() => s.evaluate('1'), InstanceDiscarded);
    assert.throws(() => s.snapshot(), InstanceDiscarded);
    nextVatWorks();
  });

  it('meters inside built-ins: a huge split/reverse/join is stopped', () => {
    const s = Sandbox.create();
    assert.throws(
      () => s.evaluate("'x'.repeat(2e7).split('').reverse().join('')", { budget: 20_000_000n }),
      MeterExhausted,
    );
    nextVatWorks();
  });

  it('caps memory: a 1 GB allocation loop gets a catchable out-of-memory', () => {
    const s = Sandbox.create({ maxMemoryBytes: 64 * 1024 * 1024 });
    assert.throws(
      () => s.evaluate('const bufs = []; for (let i = 0; i < 1000; i++) bufs.push(new ArrayBuffer(1e6)); bufs.length'),
      (err: Error) => err instanceof GuestError && /out of memory/.test(err.message),
    );
    // The guest can catch it too, and the instance stays usable.
    assert.equal(
      s.evaluate('let r; try { const b = []; for (;;) b.push(new ArrayBuffer(1e6)); } catch (e) { r = e.message; } r'),
      'out of memory',
    );
    assert.equal(s.evaluate('1 + 1'), 2);
    assert.ok(s.memoryBytes <= 64 * 1024 * 1024);
    nextVatWorks();
  });

  it('turns unbounded recursion into a catchable stack overflow', () => {
    const s = Sandbox.create();
    assert.throws(
      () => s.evaluate('function f(n) { return f(n + 1) + 1; } f(0)'),
      (err: Error) => err instanceof GuestError && /stack overflow/.test(err.message),
    );
    assert.equal(s.evaluate('function g(n) { return n === 0 ? 0 : 1 + g(n - 1); } g(200)'), 200);
    nextVatWorks();
  });

  it('discards an instance after a trap and never runs it again', () => {
    const s = Sandbox.create();
    s.onSyscall = () => {
      throw new Error('handler blew up');
    };
    // A throwing handler is not a trap: the guest sees an Error it can catch.
    assert.equal(s.evaluate('try { __quickvat_syscall("x") } catch (e) { e.message }'), 'syscall failed: handler blew up');
    assert.throws(() => s.evaluate('__quickvat_syscall(42)'), /syscall takes a string, got a number/);
    assert.throws(() => s.evaluate('while (true) {}', { budget: 1_000_000n }), MeterExhausted);
    assert.throws(() => s.evaluate('1'), (e: Error) => e instanceof InstanceDiscarded && /budget exhausted/.test(e.message));
  });

  it('treats a string with no NUL before the end of memory as corrupt memory: a trap, not a shorter string (break-perf L1)', () => {
    const s = Sandbox.create();
    const inst = (s as unknown as { inst: { buffer(): Buffer; cString(ptr: number): string } }).inst;
    const mem = inst.buffer();
    mem.fill(0x41, mem.length - 16);
    assert.throws(() => inst.cString(mem.length - 16), (e: Error) => e instanceof InstanceTrapped && /runs past the end of memory/.test(e.message));
    assert.throws(() => s.evaluate('1'), InstanceDiscarded);
  });

  it('reports guest exceptions and rejections as GuestError without harming the instance', () => {
    const s = Sandbox.create();
    assert.throws(() => s.evaluate('null.x'), (e: Error) => e instanceof GuestError && e.guestName === 'TypeError');
    assert.throws(() => s.evaluate('Promise.reject(new RangeError("nope"))'), /RangeError: nope/);
    assert.throws(() => s.evaluate('new Promise(() => {})'), /did not settle/);
    assert.equal(s.evaluate('"still here"'), 'still here');
    assert.ok(!(new GuestError('a', 'b', undefined) instanceof InstanceTrapped));
  });
});
