// Issue #10 item 6: the same input gives the same stack outcome on every host,
// whatever its --stack-size, JIT state or stack depth at the call.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestError, HostStackOverflow, InstanceDiscarded, Sandbox } from '../../host/engine/index.js';
import { Host } from '../../host/index.js';
import { evalUnchecked, UNCHECKED_DEEP } from '../fixtures/stack-child.js';
import { COUNTER_VAT } from '../fixtures/vats.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'stack-child.js');

interface ChildResult {
  outcomes: string[];
  hash: string;
  used: string;
  hostFrames: number;
  totalFrames: number;
}

function runChild(nodeFlags: string[], args: string[] = ['run']): ChildResult {
  const out = execFileSync(process.execPath, [...nodeFlags, CHILD, ...args], { encoding: 'utf8' });
  return JSON.parse(out) as ChildResult;
}

describe('engine: deterministic stack limits (issue #10)', function () {
  this.timeout(120_000);

  it('gives the same outcomes and state hash under --stack-size=700, the default, and half-way down the host stack', () => {
    const runs = {
      default: runChild([]),
      'stack-size 700': runChild(['--stack-size=700']),
      'stack-size 700, half the stack used by the host': runChild(['--stack-size=700'], ['run', 'half-stack']),
    };
    const half = runs['stack-size 700, half the stack used by the host'];
    assert.ok(half.hostFrames > 1000 && half.hostFrames * 2 >= half.totalFrames - 1, `host recursion: ${half.hostFrames} of ${half.totalFrames} frames`);
    const [first, ...rest] = Object.values(runs);
    for (const [name, run] of Object.entries(runs)) {
      assert.deepEqual(run.outcomes, first.outcomes, `${name}: outcomes differ from the default run`);
      assert.equal(run.hash, first.hash, `${name}: state hash differs`);
      assert.equal(run.used, first.used, `${name}: metered units differ`);
    }
    assert.ok(rest.length === 2);
    // Every delivery either ran or got QuickJS's catchable stack error: no
    // host stack overflow, no trap. And each kind of nesting was probed on
    // both sides of its limit.
    const byKind = new Map<string, string[]>();
    for (const line of first.outcomes) {
      const kind = line.replace(/ \d+:.*$/, '');
      byKind.set(kind, [...(byKind.get(kind) ?? []), line]);
      assert.doesNotMatch(line, /HostStackOverflow|InstanceTrapped|StackLimitExceeded|InstanceDiscarded/, line);
    }
    for (const [kind, lines] of byKind) {
      assert.ok(lines.some((l) => !/stack overflow/.test(l)), `${kind}: no depth below the limit`);
      assert.ok(lines.some((l) => /(SyntaxError|InternalError): stack overflow/.test(l)), `${kind}: no depth above the limit`);
    }
  });

  it('keeps a sandbox usable after QuickJS reports the overflow, and the guest can catch it', () => {
    const s = Sandbox.create();
    const deep = JSON.stringify('['.repeat(1000) + ']'.repeat(1000));
    assert.equal(s.evaluate(`try { eval(${deep}); 'parsed' } catch (e) { e.name + ': ' + e.message }`), 'SyntaxError: stack overflow');
    assert.throws(
      () => s.evaluate(`${'['.repeat(1000)}${']'.repeat(1000)}`),
      (e: Error) => e instanceof GuestError && e.message === 'SyntaxError: stack overflow',
    );
    // Ordinary recursion still has room (about 370 plain calls; see the operators' guide).
    assert.equal(s.evaluate('(function f(k) { return k === 0 ? 0 : 1 + f(k - 1); })(300)'), 300);
    assert.equal(s.evaluate('JSON.parse(JSON.stringify(Array.from({ length: 100 }).reduce((a) => [a], [])))[0].length'), 1);
  });

  it('traps at the same point, as StackLimitExceeded, where QuickJS does not check', () => {
    const trapAt = () => {
      const { outcome, meterLeft, inst } = evalUnchecked(UNCHECKED_DEEP.parens);
      assert.equal(outcome, 'StackLimitExceeded');
      assert.throws(() => inst.guard(1n, () => 0), InstanceDiscarded);
      return meterLeft;
    };
    assert.equal(trapAt(), trapAt(), 'the guard tripped after different amounts of work');
  });

  it('needs no more than its documented native budget: the guard trips first with 400 KB of V8 stack, in either tier', () => {
    // 320 KiB of charged frames (STACK_GUARD.hardBytes) bound V8's frames;
    // measured need at the floor is at most 308 KB for the whole process.
    for (const flags of [[], ['--liftoff', '--no-wasm-tier-up'], ['--no-liftoff']]) {
      const out = runChild(['--stack-size=400', ...flags], ['unchecked']) as unknown as string[];
      assert.deepEqual(out, ['parens: StackLimitExceeded', 'stringify: StackLimitExceeded'], `node ${flags.join(' ')}`);
    }
  });

  it('never shows the guest a host stack overflow inside a syscall', () => {
    const s = Sandbox.create();
    const exhaust = (n: number): number => exhaust(n + 1) + 1;
    s.onSyscall = () => String(exhaust(0));
    // The guest's catch must not see it: it would commit a host-dependent state.
    assert.throws(() => s.evaluate(`try { __quickvat_syscall('x'); 'returned' } catch (e) { 'caught ' + e.message }`), HostStackOverflow);
    assert.equal(s.alive, false);
    assert.equal(Sandbox.create().evaluate('1 + 1'), 2);
  });

  it('host.install of a source with a 1,000-deep array literal fails with the stack error, and the host keeps working', async () => {
    const host = await Host.open();
    try {
      const deep = `export const data = ${'['.repeat(1000)}${']'.repeat(1000)};\nexport const defineInstallationKinds = () => () => () => ({});\n`;
      assert.throws(() => host.install(deep, { label: 'deep' }), (e: Error) => /stack overflow/.test(e.message) && !/host stack|trapped/.test(e.message));
      const { root } = host.createVat(COUNTER_VAT, { name: 'after' });
      assert.equal(await host.E(root).add(2), 2);
      assert.equal(await host.E(root).add(3), 5);
    } finally {
      await host.close();
    }
  });
});
