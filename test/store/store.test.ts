import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareKeys, MAX_KEY_BYTES, Store } from '../../host/store/index.js';
import { dataset } from './fixtures/dataset.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'store-child.js');

describe('store', () => {
  let dir: string;
  const stores: Store[] = [];

  /** A store the suite closes after each test, even if the test fails. */
  function openStore(storePath?: string): Store {
    const store = Store.open({ path: storePath });
    stores.push(store);
    return store;
  }

  function committed(entries: Record<string, unknown>, storePath?: string): Store {
    const store = openStore(storePath);
    for (const [key, value] of Object.entries(entries)) store.set(key, value);
    store.commit();
    return store;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-test-'));
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('crank buffer', () => {
    it('lets reads see the crank’s own writes before commit', () => {
      const store = committed({ a: 1, b: 2 });
      assert.equal(store.dirty, false);
      store.set('a', 10);
      store.set('c', 30);
      store.delete('b');
      assert.equal(store.dirty, true);
      assert.equal(store.get('a'), 10);
      assert.equal(store.get('c'), 30);
      assert.equal(store.get('b'), undefined);
      assert.equal(store.has('b'), false);
      assert.equal(store.has('c'), true);
      assert.equal(store.has('zzz'), false);
      store.set('b', 'back');
      assert.equal(store.get('b'), 'back');
      store.delete('c');
      assert.equal(store.has('c'), false);
    });

    it('drops the buffer on abort', () => {
      const store = committed({ a: 1, b: 2 });
      store.set('a', 10);
      store.set('new', 1);
      store.delete('b');
      store.abort();
      assert.equal(store.dirty, false);
      assert.equal(store.get('a'), 1);
      assert.equal(store.get('b'), 2);
      assert.equal(store.has('new'), false);
      assert.deepEqual([...store.entries('')], [['a', 1], ['b', 2]]);
    });

    it('stores a copy of the value as it was when set', () => {
      const store = openStore();
      const value = { list: [1, 2], bytes: new Uint8Array([1, 2, 3]) };
      store.set('v', value);
      value.list.push(3);
      value.bytes[0] = 99;
      assert.deepEqual(store.get('v'), { list: [1, 2], bytes: Buffer.from([1, 2, 3]) });
      const read = store.get('v') as { list: number[] };
      read.list.push(4);
      assert.deepEqual((store.get('v') as { list: number[] }).list, [1, 2]);
      store.commit();
      (store.get('v') as { list: number[] }).list.push(5);
      assert.deepEqual((store.get('v') as { list: number[] }).list, [1, 2]);
    });

    it('commit of an empty crank is a no-op', () => {
      const store = committed({ a: 1 });
      const before = store.stateHash();
      store.commit();
      assert.equal(store.stateHash(), before);
    });
  });

  describe('persistence', () => {
    it('keeps committed writes, and only those, across close and reopen', async () => {
      const storePath = path.join(dir, 'db');
      const first = Store.open({ path: storePath });
      assert.equal(first.temporary, false);
      assert.equal(first.path, storePath);
      first.set('kept', { n: 1n });
      first.set('gone', 1);
      first.commit();
      first.delete('gone');
      first.set('extra', 2);
      first.commit();
      first.set('uncommitted', 3);
      await first.close();

      const second = openStore(storePath);
      assert.deepEqual(second.get('kept'), { n: 1n });
      assert.equal(second.has('gone'), false);
      assert.equal(second.get('extra'), 2);
      assert.equal(second.has('uncommitted'), false);
    });

    it('treats a path with a file extension as a directory', () => {
      const storePath = path.join(dir, 'state.lmdb');
      committed({ a: 1 }, storePath);
      assert.ok(fs.statSync(storePath).isDirectory());
    });

    it('refuses to open a path that is already open in this process', () => {
      const storePath = path.join(dir, 'db');
      openStore(storePath);
      assert.throws(() => Store.open({ path: storePath }), /already open/);
    });

    it('deletes a temporary store’s directory on close', async () => {
      const store = Store.open();
      assert.equal(store.temporary, true);
      assert.ok(store.path.startsWith(os.tmpdir()));
      store.set('a', 1);
      store.commit();
      assert.ok(fs.existsSync(store.path));
      await store.close();
      assert.equal(fs.existsSync(store.path), false);
    });

    it('keeps a named store’s directory on close', async () => {
      const storePath = path.join(dir, 'db');
      await Store.open({ path: storePath }).close();
      assert.ok(fs.existsSync(storePath));
    });

    it('throws "store is closed" on any use after close', async () => {
      const store = Store.open();
      await store.close();
      await store.close();
      const uses: Array<() => unknown> = [
        () => store.get('a'),
        () => store.has('a'),
        () => store.set('a', 1),
        () => store.delete('a'),
        () => store.getNextKey(''),
        () => [...store.entries('')],
        () => store.commit(),
        () => store.abort(),
        () => store.dirty,
        () => store.stateHash(),
      ];
      for (const use of uses) assert.throws(use, { message: 'store is closed' });
    });
  });

  describe('values', () => {
    const roundTrips: Array<[string, unknown]> = [
      ...dataset(),
      ['bigint.zero', 0n],
      ['bigint.min-i64', -(2n ** 63n)],
      ['bigint.max-i64', 2n ** 63n - 1n],
      ['bigint.2^64', 2n ** 64n],
      ['bigint.2^2000', 2n ** 2000n],
      ['number.big', 2 ** 40],
      ['empty-bytes', new Uint8Array(0)],
      ['buffer', Buffer.from('buffer bytes')],
      ['null', null],
      ['false', false],
      ['empty-string', ''],
      ['null-proto', Object.assign(Object.create(null) as object, { a: 1 })],
    ];

    function assertRoundTrip(store: Store): void {
      for (const [key, value] of roundTrips) {
        const read = store.get(key);
        if (value instanceof Uint8Array) {
          assert.ok(read instanceof Uint8Array, `${key} reads back as a Uint8Array`);
          assert.deepEqual(Buffer.from(read), Buffer.from(value), key);
        } else {
          assert.deepEqual(read, normalize(value), key);
        }
      }
    }

    // A null-prototype object reads back as an ordinary object.
    function normalize(value: unknown): unknown {
      return value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === null ? { ...value } : value;
    }

    it('round-trips bigints, bytes, nested values and scalars, buffered and committed', async () => {
      const storePath = path.join(dir, 'db');
      const store = Store.open({ path: storePath });
      for (const [key, value] of roundTrips) store.set(key, value);
      assertRoundTrip(store);
      store.commit();
      assertRoundTrip(store);
      await store.close();
      assertRoundTrip(openStore(storePath));
    });

    it('keeps numbers and bigints apart', () => {
      const store = committed({ n: 5, b: 5n, big: 2 ** 60 });
      assert.equal(store.get('n'), 5);
      assert.equal(store.get('b'), 5n);
      assert.equal(store.get('big'), 2 ** 60);
    });

    it('round-trips a multi-megabyte memory snapshot', async () => {
      const storePath = path.join(dir, 'db');
      const snapshot = new Uint8Array(6 * 1024 * 1024 + 13);
      for (let i = 0; i < snapshot.length; i += 4093) snapshot[i] = (i >> 12) & 0xff;
      const store = Store.open({ path: storePath });
      store.set('snapshot', snapshot);
      store.commit();
      await store.close();
      const read = openStore(storePath).get('snapshot');
      assert.ok(read instanceof Uint8Array);
      assert.equal(Buffer.compare(read, snapshot), 0);
    });

    it('rejects undefined, naming the key', () => {
      const store = openStore();
      assert.throws(() => store.set('the.key', undefined), {
        name: 'TypeError',
        message: /key 'the\.key' is undefined/,
      });
      assert.throws(() => store.set('k', { a: [1, undefined] }), { name: 'TypeError', message: /at \.a\[1\] is undefined/ });
      assert.throws(() => store.set('k', { a: undefined }), { name: 'TypeError', message: /at \.a is undefined/ });
      assert.equal(store.dirty, false);
    });

    it('rejects values that would not read back as written', () => {
      const store = openStore();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const cases: Array<[unknown, RegExp]> = [
        [() => 1, /key 'k' is a function/],
        [Symbol('s'), /is a symbol/],
        [new Map(), /is an instance of Map/],
        [{ when: new Date(0) }, /at \.when is an instance of Date/],
        [{ 'odd key': [new Float64Array(1)] }, /at \["odd key"\]\[0\] is an instance of Float64Array/],
        [[1, , 3], /at \[1\] is a hole in a sparse array/],
        [cyclic, /at \.self is a cyclic reference/],
        [{ [Symbol('s')]: 1 }, /symbol keys/],
      ];
      for (const [value, message] of cases) assert.throws(() => store.set('k', value), { name: 'TypeError', message });
      assert.equal(store.dirty, false);
    });

    it('reads a buffered value exactly as its committed encoding reads back (types, key order, edge cases)', async () => {
      // Buffered writes are held as values and encoded at commit: what a crank
      // reads before the commit must be what every later reader decodes.
      const tricky: Array<[string, unknown]> = [
        ['neg-zero', -0],
        ['neg-zero.nested', { a: [-0, 1] }],
        ['lone-surrogate', 'a\ud800b'],
        ['lone-surrogate.nested', { s: ['x\udfff'] }],
        ['lone-surrogate.key', { ['k\ud800']: 1 }],
        ['proto-key', JSON.parse('{"__proto__": {"x": 1}, "y": 2}')],
        ['bytes.nested', { b: new Uint8Array([1, 2, 3]) }],
        ['null.top', null],
        ['null.nested', { a: null, b: [null] }],
        ['key-order', { b: 1, 2: 'two', a: 3, 1: 'one' }],
        ['null-proto.nested', { o: Object.assign(Object.create(null) as object, { z: 1, a: 2 }) }],
        ['numbers', [0, 1.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2, 2 ** 64, NaN, Infinity, -Infinity, 5e-324]],
        ['bigints', [0n, -1n, 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, 2n ** 300n]],
        ['bool', [true, false]],
        ...roundTrips,
      ];
      const storePath = path.join(dir, 'db');
      const store = Store.open({ path: storePath });
      const buffered = new Map<string, unknown>();
      for (const [key, value] of tricky) {
        store.set(key, value);
        buffered.set(key, store.get(key));
      }
      store.commit();
      await store.close();
      const reopened = openStore(storePath);
      for (const [key] of tricky) assertSameShape(buffered.get(key), reopened.get(key), key);
    });

    it('holds a copy: changing the value after set() changes neither the buffered read nor the commit', () => {
      const store = openStore();
      const value = { list: [1, { deep: 'a' }], n: 1 };
      store.set('k', value);
      value.n = 2;
      (value.list[1] as { deep: string }).deep = 'b';
      value.list.push(3);
      assert.deepEqual(store.get('k'), { list: [1, { deep: 'a' }], n: 1 });
      assert.throws(() => ((store.get('k') as { n: number }).n = 5), TypeError, 'a buffered value read back is frozen');
      store.commit();
      assert.deepEqual(store.get('k'), { list: [1, { deep: 'a' }], n: 1 });
    });

    it('holds small records as frozen copies and encodes large ones at set() (break-10d #2: heap per buffered write)', () => {
      const store = openStore();
      store.set('small', { a: 1, s: 'x'.repeat(100) });
      assert.ok(Object.isFrozen(store.get('small')));
      assert.equal(store.get('small'), store.get('small'), 'a held copy is shared by readers');
      for (const big of [{ s: 'x'.repeat(20_000) }, { list: Array.from({ length: 1000 }, (_, i) => i) }]) {
        store.set('big', big);
        const read = store.get('big');
        assert.notEqual(read, store.get('big'), 'an encoded write decodes afresh for each reader');
        assert.deepEqual(read, big);
      }
    });

    it('keeps the committed value for readers when a crank that rewrote it is rolled back', () => {
      const store = committed({ k: { v: 1 } });
      assert.deepEqual(store.get('k'), { v: 1 });
      store.beginCrank();
      store.set('k', { v: 2 });
      assert.deepEqual(store.get('k'), { v: 2 });
      store.abortCrank();
      assert.deepEqual(store.get('k'), { v: 1 });
      store.beginCrank();
      store.delete('k');
      assert.equal(store.has('k'), false);
      store.abortCrank();
      assert.equal(store.has('k'), true);
      assert.deepEqual(store.get('k'), { v: 1 });
    });

    it('accepts a value shared at two places that is not a cycle', () => {
      const store = openStore();
      const shared = { x: 1 };
      store.set('k', { a: shared, b: [shared] });
      assert.deepEqual(store.get('k'), { a: { x: 1 }, b: [{ x: 1 }] });
    });
  });

  describe('keys', () => {
    it('rejects invalid keys with errors that say what is wrong', () => {
      const store = openStore();
      assert.throws(() => store.set(42 as unknown as string, 1), {
        name: 'TypeError',
        message: 'store key must be a non-empty string, got 42',
      });
      assert.throws(() => store.get(''), { message: "store key must be a non-empty string, got ''" });
      assert.throws(() => store.delete('a\uD800b'), { message: /must not contain lone surrogates/ });
      assert.throws(() => store.set('x'.repeat(MAX_KEY_BYTES + 1), 1), { name: 'RangeError', message: /1979 bytes/ });
      assert.throws(() => store.getNextKey(7 as unknown as string), { message: 'store prefix must be a string, got 7' });
      assert.throws(() => store.getNextKey('a', ''), { message: /store after key must be a non-empty string/ });
      store.set('x'.repeat(MAX_KEY_BYTES), 1);
      store.set('é'.repeat(MAX_KEY_BYTES / 2), 1);
      store.commit();
      assert.equal(store.get('x'.repeat(MAX_KEY_BYTES)), 1);
    });

    it('orders keys by their UTF-8 bytes', () => {
      const keys = ['a', 'b', 'ab', 'a\u0000', '\u0001', '\u007f', '\u0080', 'é', '\uFFFD', '\uE000', '\uD7FF', '\u{10000}', '\u{1F600}', '\u{10FFFF}', 'z\u{1F600}', 'z\uFFFF'];
      for (const a of keys) {
        for (const b of keys) {
          assert.equal(Math.sign(compareKeys(a, b)), Buffer.compare(Buffer.from(a), Buffer.from(b)), `${a} vs ${b}`);
        }
      }
      const store = committed(Object.fromEntries(keys.filter((_, i) => i % 2 === 0).map((k) => [k, 1])));
      for (const key of keys.filter((_, i) => i % 2 === 1)) store.set(key, 1);
      const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.deepEqual([...store.entries('')].map(([k]) => k), sorted);
      store.commit();
      assert.deepEqual([...store.entries('')].map(([k]) => k), sorted);
    });
  });

  describe('getNextKey and entries', () => {
    let store: Store;

    beforeEach(() => {
      store = committed({ a: 0, b: 0, 'b.1': 1, 'b.2': 2, 'b.3': 3, 'b.5': 5, ba: 0, c: 0 });
      store.set('b.25', 25);
      store.set('b.4', 4);
      store.set('b.3', 33);
      store.delete('b.2');
      store.delete('b.5');
      store.delete('b.6');
    });

    it('merges committed and buffered keys, hiding buffered deletes', () => {
      const walk: string[] = [];
      for (let key = store.getNextKey('b.'); key !== undefined; key = store.getNextKey('b.', key)) walk.push(key);
      assert.deepEqual(walk, ['b.1', 'b.25', 'b.3', 'b.4']);
    });

    it('respects prefix boundaries', () => {
      assert.equal(store.getNextKey('b'), 'b');
      assert.equal(store.getNextKey('b', 'b.4'), 'ba');
      assert.equal(store.getNextKey('b', 'ba'), undefined);
      assert.equal(store.getNextKey('b.4'), 'b.4');
      assert.equal(store.getNextKey('b.4', 'b.4'), undefined);
      assert.equal(store.getNextKey('bb'), undefined);
      assert.equal(store.getNextKey('b.2'), 'b.25');
      assert.equal(store.getNextKey('b.5'), undefined);
      assert.equal(store.getNextKey('d'), undefined);
      assert.equal(store.getNextKey(''), 'a');
    });

    it('starts after `after`, whether or not it is a key', () => {
      assert.equal(store.getNextKey('b.', 'a'), 'b.1');
      assert.equal(store.getNextKey('b.', 'b'), 'b.1');
      assert.equal(store.getNextKey('b.', 'b.1'), 'b.25');
      assert.equal(store.getNextKey('b.', 'b.2'), 'b.25');
      assert.equal(store.getNextKey('b.', 'b.26'), 'b.3');
      assert.equal(store.getNextKey('b.', 'b.4'), undefined);
      assert.equal(store.getNextKey('b.', 'b/'), undefined);
      assert.equal(store.getNextKey('b.', 'c'), undefined);
      assert.equal(store.getNextKey('', 'b.4'), 'ba');
      assert.equal(store.getNextKey('', 'c'), undefined);
    });

    it('sees deletes of every key under a prefix and keys set again', () => {
      for (const key of ['b.1', 'b.25', 'b.3', 'b.4']) store.delete(key);
      assert.equal(store.getNextKey('b.'), undefined);
      assert.equal(store.getNextKey('b'), 'b');
      store.set('b.2', 'again');
      assert.equal(store.getNextKey('b.'), 'b.2');
      store.abort();
      assert.equal(store.getNextKey('b.', 'b.1'), 'b.2');
      assert.equal(store.getNextKey('b.', 'b.3'), 'b.5');
    });

    it('finds keys that exist only in the buffer or only committed', () => {
      store.set('only.buffered', 1);
      assert.equal(store.getNextKey('only.'), 'only.buffered');
      assert.equal(store.getNextKey('c'), 'c');
      store.set('c.1', 1);
      store.delete('c');
      assert.equal(store.getNextKey('c'), 'c.1');
    });

    it('iterates entries in key order with values', () => {
      assert.deepEqual(
        [...store.entries('b.')],
        [['b.1', 1], ['b.25', 25], ['b.3', 33], ['b.4', 4]],
      );
      assert.deepEqual([...store.entries('b.', 'b.25')], [['b.3', 33], ['b.4', 4]]);
      assert.deepEqual([...store.entries('')].map(([k]) => k), ['a', 'b', 'b.1', 'b.25', 'b.3', 'b.4', 'ba', 'c']);
      store.commit();
      assert.deepEqual([...store.entries('')].map(([k]) => k), ['a', 'b', 'b.1', 'b.25', 'b.3', 'b.4', 'ba', 'c']);
      assert.deepEqual([...store.entries('b.')], [['b.1', 1], ['b.25', 25], ['b.3', 33], ['b.4', 4]]);
    });

    it('entries sees writes made while iterating exactly as a getNextKey walk does', () => {
      // entries() walks committed keys with one cursor and asks the buffer
      // afresh each step; a getNextKey walk starts over each step. With
      // writes ahead of and behind the position, both must see the same keys.
      let seed = 7;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
      const key = () => `b.${rand(40)}`;
      for (let round = 0; round < 20; round++) {
        const model = committed(Object.fromEntries(Array.from({ length: 15 }, () => [key(), 1])));
        const walk = committed({});
        for (const s of [model, walk]) s.beginCrank();
        const writes = Array.from({ length: 60 }, () => [rand(3), key()] as const);
        const apply = (s: Store, i: number) => {
          for (const [op, k] of writes.slice(i * 3, i * 3 + 3)) op === 0 ? s.delete(k) : s.set(k, op);
        };
        // Both stores hold the same committed keys and the same writes.
        for (const [k, v] of model.entries('')) walk.set(k, v as number);
        walk.endCrank();
        walk.commit();
        walk.beginCrank();
        // Buffered writes from before the walk too (the crank's earlier work).
        const pre = Array.from({ length: 10 }, () => [rand(3), key()] as const);
        for (const s of [model, walk]) for (const [op, k] of pre) op === 0 ? s.delete(k) : s.set(k, op);
        const seen: string[] = [];
        let i = 0;
        for (const [k] of model.entries('b.')) {
          seen.push(k);
          apply(model, i++);
        }
        const expected: string[] = [];
        let j = 0;
        for (let k = walk.getNextKey('b.'); k !== undefined; k = walk.getNextKey('b.', k)) {
          expected.push(k);
          apply(walk, j++);
        }
        assert.deepEqual(seen, expected, `round ${round}`);
        for (const s of [model, walk]) s.abortCrank();
      }
    });

    it('entries sees what a commit between two steps changed (outside a crank)', () => {
      const s = committed(Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`e.${String(i).padStart(3, '0')}`, i])));
      const seen: string[] = [];
      for (const [key] of s.entries('e.')) {
        seen.push(key);
        if (key === 'e.010') {
          // Past the first batch of committed keys and inside it.
          s.delete('e.011');
          s.delete('e.100');
          s.set('e.0105', 'new');
          s.set('e.120x', 'new');
          s.commit();
        }
      }
      const expected = Array.from({ length: 150 }, (_, i) => `e.${String(i).padStart(3, '0')}`).filter((k) => k !== 'e.011' && k !== 'e.100');
      expected.splice(11, 0, 'e.0105');
      expected.splice(expected.indexOf('e.120') + 1, 0, 'e.120x');
      assert.deepEqual(seen, expected);
    });

    for (const how of ['abort', 'abortCrank'] as const) {
      it(`entries yields a committed key the buffer had deleted when ${how}() restores it mid-iteration (break-10d)`, () => {
        const s = committed({ 'x.1': 1, 'x.3': 3 });
        if (how === 'abortCrank') s.beginCrank();
        s.set('x.2', 2);
        s.delete('x.3');
        const seen: string[] = [];
        for (const [key] of s.entries('x.')) {
          seen.push(key);
          if (key === 'x.2') s[how]();
        }
        assert.deepEqual(seen, ['x.1', 'x.2', 'x.3']);
        assert.equal(s.getNextKey('x.', 'x.2'), 'x.3');
      });
    }

    it('an entries iterator open across replaceRawEntries() yields only what the replaced state holds (break-perf L2)', () => {
      const s = committed(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k.${i}`, i])));
      const other = committed({ 'k.5': 'other' });
      const replacement = [...other.rawEntries()];
      const it = s.entries('k.');
      assert.equal(it.next().value?.[0], 'k.0');
      s.replaceRawEntries(replacement);
      assert.deepEqual([...it], [['k.5', 'other']]);
    });

    it('an entries iterator left unfinished holds no lmdb snapshot (the file does not grow with later commits)', () => {
      const grow = (abandon: boolean, dirName: string) => {
        const s = committed(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`g.${i}`, 'x'.repeat(1000)])), path.join(dir, dirName));
        const it = s.entries('g.');
        if (abandon) it.next();
        for (let round = 0; round < 60; round++) {
          for (let i = 0; i < 200; i++) s.set(`g.${i}`, `${round}`.repeat(1000 / String(round).length));
          s.commit();
        }
        return fs.statSync(path.join(dir, dirName, 'data.mdb')).size;
      };
      const control = grow(false, 'control');
      const abandoned = grow(true, 'abandoned');
      assert.ok(abandoned <= control * 1.5, `store file ${abandoned} bytes with an unfinished iterator, ${control} without`);
    });

    it('lets a crank delete entries while iterating over them', () => {
      for (const [key] of store.entries('b')) store.delete(key);
      assert.deepEqual([...store.entries('')].map(([k]) => k), ['a', 'c']);
    });

    it('finds the next key among many committed keys, preferring a nearer buffered one', () => {
      const big = openStore();
      for (let i = 0; i < 20000; i++) big.set(`k.${String(i).padStart(5, '0')}`, i);
      big.commit();
      big.set('k.10000x', 'buffered');
      big.delete('k.10001');
      assert.equal(big.getNextKey('k.', 'k.10000'), 'k.10000x');
      assert.equal(big.getNextKey('k.', 'k.10000x'), 'k.10002');
      assert.equal(big.getNextKey('k.', 'k.19999'), undefined);
      assert.equal(big.getNextKey('k.'), 'k.00000');
    });
  });

  describe('stateHash', () => {
    it('is equal for equal committed content, however it was written', () => {
      const a = openStore();
      a.set('x', 1);
      a.set('y', { z: [1n, 'two'] });
      a.set('w', new Uint8Array([5]));
      a.commit();
      a.set('tmp', 1);
      a.commit();
      a.delete('tmp');
      a.commit();

      const b = openStore();
      b.set('w', new Uint8Array([5]));
      b.set('y', { z: [1n, 'two'] });
      b.set('x', 'first');
      b.set('x', 1);
      b.commit();

      assert.equal(a.stateHash(), b.stateHash());
      assert.match(a.stateHash(), /^[0-9a-f]{64}$/);
      assert.equal(a.stateHash('y'), b.stateHash('y'));
    });

    it('differs when content differs', () => {
      const base = { a: 1, b: 'two' };
      const hash = (entries: Record<string, unknown>) => committed(entries).stateHash();
      const reference = hash(base);
      assert.notEqual(hash({ ...base, b: 'three' }), reference);
      assert.notEqual(hash({ ...base, c: 0 }), reference);
      assert.notEqual(hash({ a: 1 }), reference);
      assert.notEqual(hash({ a: 1n, b: 'two' }), reference);
      assert.notEqual(hash({ a: 1, bb: 'two' }), reference);
      // Framing: moving bytes between key and value changes the hash.
      assert.notEqual(hash({ ab: 'c' }), hash({ a: 'bc' }));
    });

    it('covers only the given prefix', () => {
      const a = committed({ 'p.1': 1, 'p.2': 2, q: 1, o: 5 });
      const b = committed({ 'p.1': 1, 'p.2': 2, q: 2 });
      assert.equal(a.stateHash('p.'), b.stateHash('p.'));
      assert.notEqual(a.stateHash(), b.stateHash());
      assert.equal(a.stateHash('none'), committed({}).stateHash());
    });

    it('refuses to hash while the crank has uncommitted writes', () => {
      const store = committed({ a: 1 });
      store.delete('a');
      assert.throws(() => store.stateHash(), /uncommitted writes/);
      store.abort();
      store.stateHash();
    });

    it('is the same in another process, whatever this process encoded before', async () => {
      const warmup = openStore();
      warmup.set('shape', { x: 0, y: 'warm' });
      warmup.set('other', { list: [1, 'two', null, true, { three: 0n }] });
      warmup.commit();

      const here = openStore();
      const entries = dataset();
      for (const [key, value] of entries.slice(0, 4).reverse()) here.set(key, value);
      here.commit();
      for (const [key, value] of entries.slice(4).reverse()) here.set(key, value);
      here.commit();

      const childPath = path.join(dir, 'child');
      const childHash = execFileSync(process.execPath, [CHILD, 'hash', childPath], { encoding: 'utf8' });
      assert.equal(here.stateHash(), childHash);

      const theirs = openStore(childPath);
      for (const [key, value] of entries) assert.deepEqual(theirs.get(key), value instanceof Uint8Array ? Buffer.from(value) : value);
    });
  });

  describe('crash safety', function () {
    this.timeout(300_000);

    const CRANKS = 2000;
    const KEYS_PER_CRANK = 50;

    /**
     * Runs the cranks child until it has reported `reports` commits, waits
     * `delayMicros` more, then SIGKILLs it. The kill arrives a roughly fixed
     * time after a report, so varying the delay is what spreads the kills over
     * the phases of a crank (buffering, encoding, inside the lmdb commit).
     */
    function runAndKill(
      storePath: string,
      reports: number,
      delayMicros: number,
    ): Promise<{ lastReported: number; signal: string | null }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, 'cranks', storePath, String(CRANKS), String(KEYS_PER_CRANK)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let pending = '';
        let seen = 0;
        let lastReported = 0;
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          const lines = (pending + chunk).split('\n');
          pending = lines.pop()!;
          for (const line of lines) {
            lastReported = Number(line);
            if (++seen === reports) {
              // A busy wait: timers cannot wait less than a millisecond.
              const until = process.hrtime.bigint() + BigInt(delayMicros) * 1000n;
              while (process.hrtime.bigint() < until);
              child.kill('SIGKILL');
            }
          }
        });
        child.on('error', reject);
        child.on('close', (_code, signal) => resolve({ lastReported, signal }));
      });
    }

    async function checkCranks(storePath: string, lastReported: number): Promise<number> {
      const store = Store.open({ path: storePath });
      try {
        const counter = store.get('counter');
        assert.equal(typeof counter, 'number');
        // The child reports a crank after its commit returned, and may die
        // between committing and reporting.
        assert.ok(
          counter === lastReported || counter === lastReported + 1,
          `counter ${counter} after last report ${lastReported}`,
        );
        const perCrank = new Map<number, number>();
        for (const [key, value] of store.entries('n.')) {
          const [, crankText, slotText] = key.split('.');
          const crank = Number(crankText);
          assert.ok(crank < (counter as number), `key ${key} of a crank after the counter ${counter}`);
          assert.deepEqual(value, { crank, slot: Number(slotText), payload: 'p'.repeat(200) });
          perCrank.set(crank, (perCrank.get(crank) ?? 0) + 1);
        }
        assert.equal(perCrank.size, counter);
        for (const [crank, count] of perCrank) assert.equal(count, KEYS_PER_CRANK, `keys of crank ${crank}`);
        return counter as number;
      } finally {
        await store.close();
      }
    }

    it('keeps every crank whole when the process is SIGKILLed mid-sequence', async () => {
      const storePath = path.join(dir, 'db');
      let total = 0;
      // Each round resumes from what the previous one left, so recovery from a
      // kill is followed by more commits on the same environment.
      const delays = [0, 130, 290, 470, 680, 920, 1190, 1500, 1850, 2250, 2700, 3200];
      for (const [round, delayMicros] of delays.entries()) {
        const reports = 20 + ((round * 37) % 50);
        const { lastReported, signal } = await runAndKill(storePath, reports, delayMicros);
        assert.equal(signal, 'SIGKILL', 'the child must be killed before it finishes its cranks');
        assert.ok(lastReported >= total + reports);
        total = await checkCranks(storePath, lastReported);
      }
    });
  });
});

/** Equal values of the same types with keys in the same order; binaries compared by bytes. */
function assertSameShape(actual: unknown, expected: unknown, where: string): void {
  if (expected instanceof Uint8Array) {
    assert.ok(actual instanceof Uint8Array, `${where}: a Uint8Array`);
    assert.deepEqual(Buffer.from(actual), Buffer.from(expected), where);
    return;
  }
  if (typeof expected !== 'object' || expected === null) {
    assert.ok(Object.is(actual, expected), `${where}: ${String(actual)} is ${String(expected)}`);
    return;
  }
  assert.equal(typeof actual, 'object', where);
  assert.equal(Array.isArray(actual), Array.isArray(expected), `${where}: array or not`);
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: prototype`);
  assert.deepEqual(Object.keys(actual as object), Object.keys(expected), `${where}: keys in order`);
  for (const name of Object.keys(expected)) {
    assertSameShape((actual as Record<string, unknown>)[name], (expected as Record<string, unknown>)[name], `${where}.${name}`);
  }
}
