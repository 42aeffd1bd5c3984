// Build step: make native (V8) stack use inside the wasm deterministic.
//
// Why: QuickJS's own stack check measures emscripten's shadow stack (the
// __stack_pointer global), not the native frames V8 pushes for each wasm call.
// Recursive C code that keeps little on the shadow stack (the parser, JSON,
// regex, toString) can exhaust V8's stack first, and where that happens
// depends on the host (its depth, --stack-size, JIT tier): one replica commits
// a delivery another traps on.
//
// What: every wasm function f is rewritten so that on entry it moves
// __stack_pointer down by a weight W(f) that bounds f's native frame, and on
// exit moves it back. Two effects:
//   1. QuickJS's checks (js_check_stack_overflow and the regex one) now see
//      native depth too, so realistic nesting gets QuickJS's catchable
//      "stack overflow" error at a depth that depends only on the input.
//   2. A hard floor: an entry that would take __stack_pointer more than
//      STACK_GUARD.hardBytes (less the largest leaf frame) below its base sets
//      an exported flag and traps. Native use below a guest entry is thus
//      bounded by hardBytes whatever the host does: the documented guarantee.
// The moved pointer only skips shadow-stack bytes (the region is 5 MiB, the
// floor sits far above its end), it never hands them out twice.
//
// How: f's body moves into a new function f$body; f becomes
// `sp -= W; check; call f$body(params); sp += W` with f marked no-inline, and
// binaryen's inliner folds f$body (one caller) back into f, turning its
// `return`s into branches to the exit code. W is filled in afterwards from
// the final function's locals, when inlining is done.
import binaryen from 'binaryen';
import { STACK_GUARD } from './quickjs-build.js';

type Mod = binaryen.Module;
// Present at run time; missing from binaryen's .d.ts as namespaces.
const api = binaryen as unknown as {
  Function: { setBody(func: number, body: number): void; getNumLocals(func: number): number };
  Const: { setValueI32(expr: number, value: number): void };
};

/** Upper bound on V8's native frame for a function with this many locals (params included). */
export function frameWeight(locals: number): number {
  const bytes = STACK_GUARD.frameFixedBytes + STACK_GUARD.bytesPerLocal * locals;
  return Math.ceil(bytes / 16) * 16; // keep the shadow stack 16-byte aligned
}

const PLACEHOLDER = 0x7fff0000;

/**
 * Adds the native-depth guard to mod (after metering, before emitting).
 */
export function addStackGuard(mod: Mod, target: StackGuardTarget): void {
  const { sp, spFunctions } = target;
  const spBase = (binaryen.getExpressionInfo(binaryen.getGlobalInfo(mod.getGlobal(sp)).init) as binaryen.ConstInfo).value as number;
  if (spBase - STACK_GUARD.hardBytes <= 0) throw new Error(`stack guard: initial stack pointer ${spBase} is below the budget`);

  mod.addGlobal(STACK_GUARD.exceededGlobal, binaryen.i32, true, mod.i32.const(0));
  mod.addGlobalExport(STACK_GUARD.exceededGlobal, STACK_GUARD.exceededGlobal);
  const trapName = 'quickvat$stack_exceeded';
  mod.addFunction(
    trapName,
    binaryen.none,
    binaryen.none,
    [],
    mod.block(null, [mod.global.set(STACK_GUARD.exceededGlobal, mod.i32.const(1)), mod.unreachable()]),
  );

  // Wrappers must stay real frames (their weight is their frame's); only the
  // bodies, each with exactly one caller, get inlined.
  binaryen.setPassArgument('no-inline', '*');
  mod.runPasses(['no-inline']);
  binaryen.setPassArgument('no-inline', null);

  const skip = new Set([...spFunctions, trapName]);
  const weights: { name: string; consts: number[] }[] = [];
  const names: string[] = [];
  // A leaf (it calls nothing, not even the host, which could call back in)
  // can only ever be the top frame, so it need not be charged: the floor
  // keeps room for the largest one instead. Many small hot helpers are leaves.
  let maxLeaf = 0;
  for (let i = 0; i < mod.getNumFunctions(); i++) {
    const ref = mod.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(ref);
    if (info.module || skip.has(info.name)) continue;
    if (makesCalls(info.body)) names.push(info.name);
    else maxLeaf = Math.max(maxLeaf, frameWeight(api.Function.getNumLocals(ref)));
  }
  const floor = spBase - STACK_GUARD.hardBytes + maxLeaf;
  for (const name of names) {
    const ref = mod.getFunction(name);
    const info = binaryen.getFunctionInfo(ref);
    const bodyName = `${name}$body`;
    mod.addFunction(bodyName, info.params, info.results, info.vars, info.body);
    const params = binaryen.expandType(info.params);
    const call = mod.call(bodyName, params.map((t, idx) => mod.local.get(idx, t)), info.results);
    const enter = mod.i32.const(PLACEHOLDER);
    const exit = mod.i32.const(PLACEHOLDER);
    const leave = mod.global.set(sp, mod.i32.add(mod.global.get(sp, binaryen.i32), exit));
    weights.push({ name, consts: [enter, exit] });
    api.Function.setBody(
      ref,
      mod.block(
        null,
        [
          mod.global.set(sp, mod.i32.sub(mod.global.get(sp, binaryen.i32), enter)),
          mod.if(mod.i32.lt_u(mod.global.get(sp, binaryen.i32), mod.i32.const(floor)), mod.call(trapName, [], binaryen.none)),
          ...passThrough(mod, call, leave, info.results),
        ],
        info.results,
      ),
    );
  }

  binaryen.setOneCallerInlineMaxSize(-1);
  mod.runPasses(['inlining', 'coalesce-locals', 'reorder-locals']);

  for (const { name, consts } of weights) {
    const fn = mod.getFunction(name);
    const locals = api.Function.getNumLocals(fn);
    const w = frameWeight(locals);
    for (const c of consts) api.Const.setValueI32(c, w);
    if (mod.getFunction(`${name}$body`)) throw new Error(`stack guard: body of ${name} was not inlined`);
  }
}

// `call; leave` keeping the call's value, without a new local: the exit code
// runs inside an operand that adds zero (bit-exact, floats via reinterpret).
function passThrough(mod: Mod, call: number, leave: number, results: binaryen.Type): number[] {
  const zeroAfter = (type: binaryen.Type, zero: number) => mod.block(null, [leave, zero], type);
  switch (results) {
    case binaryen.none:
      return [call, leave];
    case binaryen.i32:
      return [mod.i32.add(call, zeroAfter(binaryen.i32, mod.i32.const(0)))];
    case binaryen.i64:
      return [mod.i64.add(call, zeroAfter(binaryen.i64, i64Zero(mod)))];
    case binaryen.f32:
      return [mod.f32.reinterpret(mod.i32.add(mod.i32.reinterpret(call), zeroAfter(binaryen.i32, mod.i32.const(0))))];
    case binaryen.f64:
      return [mod.f64.reinterpret(mod.i64.add(mod.i64.reinterpret(call), zeroAfter(binaryen.i64, i64Zero(mod))))];
    default:
      throw new Error(`stack guard: unsupported result type ${binaryen.expandType(results).join(',')}`);
  }
}

function i64Zero(mod: Mod): number {
  // binaryen >= 120 takes one bigint here; its .d.ts still says (low, high).
  return (mod.i64.const as unknown as (v: bigint) => number)(0n);
}

// Whether an expression tree calls anything (a wasm function, the table, an
// import). Unknown expression kinds count as calls, to stay on the safe side.
function makesCalls(root: number): boolean {
  const stack = [root];
  while (stack.length > 0) {
    const e = stack.pop()!;
    if (!e) continue;
    const id = binaryen.getExpressionId(e);
    if (id !== binaryen.BlockId && !CHILDREN.has(id)) return true;
    if (CHILDREN.get(id)?.length === 0) continue; // (getExpressionInfo fails on unreachable)
    const info = binaryen.getExpressionInfo(e);
    if (id === binaryen.BlockId) stack.push(...(info as binaryen.BlockInfo).children);
    else for (const f of CHILDREN.get(id)!) stack.push((info as unknown as Record<string, number>)[f]);
  }
  return false;
}

const CHILDREN = new Map<number, readonly string[]>([
  [binaryen.IfId, ['condition', 'ifTrue', 'ifFalse']],
  [binaryen.LoopId, ['body']],
  [binaryen.BreakId, ['condition', 'value']],
  [binaryen.SwitchId, ['condition', 'value']],
  [binaryen.LocalGetId, []],
  [binaryen.LocalSetId, ['value']],
  [binaryen.GlobalGetId, []],
  [binaryen.GlobalSetId, ['value']],
  [binaryen.LoadId, ['ptr']],
  [binaryen.StoreId, ['ptr', 'value']],
  [binaryen.ConstId, []],
  [binaryen.UnaryId, ['value']],
  [binaryen.BinaryId, ['left', 'right']],
  [binaryen.SelectId, ['ifTrue', 'ifFalse', 'condition']],
  [binaryen.DropId, ['value']],
  [binaryen.ReturnId, ['value']],
  [binaryen.MemorySizeId, []],
  [binaryen.MemoryGrowId, ['delta']],
  [binaryen.NopId, []],
  [binaryen.UnreachableId, []],
  [binaryen.MemoryCopyId, ['dest', 'source', 'size']],
  [binaryen.MemoryFillId, ['dest', 'value', 'size']],
]);

export interface StackGuardTarget {
  /** emscripten's __stack_pointer global. */
  readonly sp: string;
  /** Functions that read or set it absolutely (stackSave/Restore/Alloc): left alone. */
  readonly spFunctions: readonly string[];
}

/** Finds __stack_pointer as the global stackSave returns; call before any other pass. */
export function stackGuardTarget(mod: Mod, stackSave: string, others: readonly string[]): StackGuardTarget {
  const body = binaryen.getExpressionInfo(binaryen.getFunctionInfo(mod.getFunction(stackSave)).body);
  if (body.id !== binaryen.GlobalGetId) throw new Error('stack guard: stackSave is not a plain global.get');
  return { sp: (body as binaryen.GlobalGetInfo).name, spFunctions: [stackSave, ...others] };
}
