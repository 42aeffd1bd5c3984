export { Store, LOCAL_PREFIX, type StoreOptions } from './store.js';
export { MAX_KEY_BYTES, compareKeys } from './keys.js';
export { StateDirInUse } from './dir-lock.js';
