import assert from 'node:assert/strict';
import { Far, harden, makeMarshal } from '../../host/marshal/endo.js';

// The guest runtime expects the global harden that lockdown provides.
(globalThis as { harden?: unknown }).harden ??= harden;
const { answerBody, decodePlain, decodeWithReferences, encodePlain, encodeScalar, encodeWithReferences } = await import('../../runtime/smallcaps-fast.js');

const m = makeMarshal(undefined, undefined, { serializeBodyFormat: 'smallcaps', errorTagging: 'off' });

describe('runtime: smallcaps fast paths agree with @endo/marshal', () => {
  it('encodes every scalar it accepts exactly as marshal does, and declines the rest', () => {
    const values = ['', 'a', 'hello', '!x', '#x', '$0', '-5', '+5', ',', '.', 'ü', '\u2028', 0, 1, -1, 1.5, -0, NaN, Infinity, 1e300, 2n ** 70n, -3n, 0n, true, false, null, undefined];
    let accepted = 0;
    for (const v of values) {
      const fast = encodeScalar(v);
      if (fast) {
        accepted++;
        assert.deepEqual(fast, m.toCapData(v as never), `value ${String(v)}`);
      }
    }
    assert.equal(accepted, 17, `the plain strings, finite numbers, bigints, booleans and null take the fast path`);
    for (const v of ['!x', '#x', '-5', NaN, Infinity, -0, undefined]) assert.equal(encodeScalar(v), undefined, `value ${String(v)} must take the full path`);
  });

  it("gives an answer's body exactly as marshal encodes it, undefined included, and declines the rest (the scalar-answer path of deliver)", () => {
    const values = ['', 'ok', '!x', '#x', '-5', 0, -0, 1.5, NaN, Infinity, -Infinity, 2n ** 70n, -3n, true, false, null, undefined, Symbol.iterator, [], {}];
    let accepted = 0;
    for (const v of values) {
      const body = answerBody(v);
      if (body === undefined) continue;
      accepted++;
      assert.deepEqual({ body: `#${body}`, slots: [] }, m.toCapData(v as never), `value ${String(v)}`);
    }
    assert.equal(accepted, 10, 'plain strings, finite numbers but -0, bigints, booleans, null and undefined');
  });

  it('decodes plain data exactly as marshal does, and declines anything special', () => {
    const plain = [[1, 'a', true, null], { a: 1, b: ['x', { c: 'y' }] }, ['world'], [], {}, [[[]]]];
    for (const v of plain) {
      const data = m.toCapData(harden(v) as never);
      const fast = decodePlain(data as never);
      assert.ok(fast, `fast path for ${data.body}`);
      assert.deepEqual(fast!.value, m.fromCapData(data));
      assert.ok(Object.isFrozen(fast!.value));
    }
    for (const v of [{ '#tag': 1 }, { '-k': 1 }, ['#x'], [1n], [undefined], ['+5']]) {
      const data = m.toCapData(harden(v) as never);
      assert.equal(decodePlain(data as never), undefined, data.body);
    }
    assert.equal(decodePlain({ body: '#"$0.Alleged: x"', slots: ['o-1'] }), undefined);
    assert.equal(decodePlain({ body: '#{"#error":"x","name":"Error"}', slots: [] }), undefined);
  });

  it('encodes plain data exactly as marshal does (escapes, sorted and integer-like keys, undefined), and declines references', () => {
    const plain = [
      { methods: { 'o+0': ['b', 'a'] }, kinds: [{ tag: 'Record', stateVersion: 0, facets: { '': ['value'] }, samples: [{ vref: 'o+d10/1', fields: ['i'] }] }] },
      { z: 1, a: [1, '#x', '!y', '-5', ''], 10: 'ten', 2: 'two', '#k': true, '': null, u: undefined },
      [NaN, Infinity, -Infinity, -0, 1.5, 2n ** 70n, -3n, 0n],
      'plain',
      '$special',
      [],
      {},
    ];
    for (const v of plain) assert.deepEqual(encodePlain(v), m.toCapData(harden(v) as never), JSON.stringify(m.toCapData(harden(v) as never)));
    for (const v of [Far('x', {}), [Promise.resolve()], { e: new Error('x') }, [Symbol.iterator], new Map(), Object.create({ a: 1 })]) {
      assert.equal(encodePlain(v), undefined);
    }
    const accessor = Object.defineProperty({}, 'g', { get: () => 1, enumerable: true });
    assert.equal(encodePlain(accessor), undefined);
  });
});

describe('runtime: encodeFast / decodeFast (the delivery path) agree with @endo/marshal', () => {
  it('encodes scalars, undefined and arrays of them exactly as marshal does', async () => {
    const { encodeFast, decodeFast } = await import('../../runtime/smallcaps-fast.js');
    const values: unknown[] = [undefined, 'ok', 1, true, null, 5n, [], [1, 'a', undefined, null, -2n], ['!x'], [NaN], [[1]], [{ a: 1 }]];
    for (const v of values) {
      const hardened = harden(v);
      const fast = encodeFast(hardened);
      if (fast === undefined) continue;
      assert.deepEqual(fast, m.toCapData(hardened as never), `value ${String(v)}`);
      const back = decodeFast(fast as never);
      if (back) assert.deepEqual(back.value, m.fromCapData(fast as never));
    }
    assert.equal(encodeFast(['!x']), undefined, 'special strings take the full path');
    assert.equal(encodeFast([[1]]), undefined, 'nested arrays take the full path');
  });

  it('declines arrays with holes, extra names, accessors or throwing proxies', async () => {
    const { encodeFast } = await import('../../runtime/smallcaps-fast.js');
    const holes = [1, , 3];
    const extra = Object.assign([1], { x: 1 });
    const accessor = [1];
    Object.defineProperty(accessor, 0, { get: () => 1 });
    const proxy = new Proxy([1], { ownKeys() { throw Error('trap'); } });
    const hidden = [1];
    Object.defineProperty(hidden, 0, { value: 1, enumerable: false });
    for (const v of [holes, extra, accessor, proxy, hidden]) assert.equal(encodeFast(v), undefined);
  });

  it('encodes records and arrays of remotables the vat already named exactly as marshal does, and declines unnamed ones and promises', () => {
    const a = Far('LedgerPublic', {});
    const b = Far('LedgerCreator', {});
    const c = Far('Other', {});
    const slots = new Map<object, string>([[a, 'o+d11/1'], [b, 'o+d12/1'], [c, 'o-4']]);
    const named = makeMarshal((v: object) => slots.get(v)!, undefined, { serializeBodyFormat: 'smallcaps', errorTagging: 'off' });
    const cases = [
      { publicFacet: a, creatorFacet: b },
      { z: a, a: [b, a, 'x', 1n], m: { c, again: c }, '#k': undefined },
      [c, a, c],
      a,
    ];
    for (const v of cases) {
      const expected = named.toCapData(harden(v) as never);
      assert.deepEqual(encodeWithReferences(v, (x: object) => slots.get(x)), expected, JSON.stringify(expected));
    }
    const unnamed = Far('Unnamed', {});
    for (const v of [{ x: unnamed }, [Promise.resolve()], { e: new Error('x') }, { p: harden(Promise.resolve()) }]) {
      assert.equal(encodeWithReferences(v, (x: object) => slots.get(x)), undefined);
    }
    // A promise the vat named (p+N) is not a remotable: the full path encodes it.
    const p = harden(Promise.resolve());
    assert.equal(encodeWithReferences([p], () => 'p+5'), undefined);
  });

  it('declines arrays marshal refuses (extra names, accessors, hidden indexes, throwing proxies) without running their code (break-16c #2)', () => {
    const a = Far('LedgerPublic', {});
    const slotOf = (x: object) => (x === a ? 'o+d11/1' : undefined);
    let ran = 0;
    const extra = Object.assign([a, 1], { x: 1 });
    const accessor = [a, 0];
    Object.defineProperty(accessor, 1, { get: () => ++ran, enumerable: true });
    const hidden = [a, 1];
    Object.defineProperty(hidden, 1, { value: 1, enumerable: false });
    const proxy = new Proxy([a], { ownKeys() { throw Error('trap'); } });
    for (const v of [extra, accessor, hidden, proxy, { nested: extra }, [[a], accessor]]) {
      assert.equal(encodeWithReferences(v, slotOf), undefined);
      assert.equal(encodePlain(v), undefined);
    }
    assert.equal(ran, 0, 'no getter ran');
    // Marshal refuses each of them too, so the full path keeps refusing them.
    const named = makeMarshal((v: object) => slotOf(v)!, undefined, { serializeBodyFormat: 'smallcaps', errorTagging: 'off' });
    for (const v of [extra, accessor, hidden]) assert.throws(() => named.toCapData(harden(v) as never));
  });

  it('decodes plain data with remotables exactly as marshal does (one value per slot index), and declines anything else', () => {
    const made = new Map<string, object>();
    const seen: [string, string | undefined][] = [];
    const toVal = (slot: string, iface: string | undefined) => {
      seen.push([slot, iface]);
      let v = made.get(slot);
      if (!v) made.set(slot, (v = Far(`presence ${slot}`, {})));
      return v;
    };
    const full = makeMarshal(undefined, toVal as never, { serializeBodyFormat: 'smallcaps', errorTagging: 'off' });
    const cases = [
      { body: '#{"creatorFacet":"$0.Alleged: LedgerCreator","publicFacet":"$1.Alleged: LedgerPublic"}', slots: ['ko1', 'ko2'] },
      { body: '#[["$0.Alleged: a","$1",{"x":"$0","y":[1,"s",null,true]}],"$1"]', slots: ['ko3', 'ko4'] },
      { body: '#"$0"', slots: ['ko5'] },
    ];
    for (const data of cases) {
      seen.length = 0;
      const expected = full.fromCapData(data as never);
      const marshalCalls = [...seen];
      seen.length = 0;
      const fast = decodeWithReferences(data, toVal);
      assert.ok(fast, data.body);
      assert.deepEqual(fast!.value, expected);
      assert.deepEqual(seen, marshalCalls, 'the same slots, with the same ifaces, in the same order');
      assert.ok(Object.isFrozen(fast!.value));
    }
    for (const data of [
      { body: '#["&0"]', slots: ['kp1'] },
      { body: '#["!$0"]', slots: ['ko1'] },
      { body: '#{"$k":"$0"}', slots: ['ko1'] },
      { body: '#["$1"]', slots: ['ko1'] },
      { body: '#["$x"]', slots: ['ko1'] },
      { body: '#["#undefined","$0"]', slots: ['ko1'] },
      { body: '{"@qclass":"slot","index":0}', slots: ['ko1'] },
    ]) {
      assert.equal(decodeWithReferences(data, toVal), undefined, data.body);
    }
    assert.equal(decodeWithReferences({ body: '#"$0"', slots: ['kp1'] }, () => undefined), undefined, 'a slot the caller does not take');
  });
});
