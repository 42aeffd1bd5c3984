// A key under in/ as the cutter reads it: an input waiting for a block, or
// poison (a key no replica could apply), which is skipped and deleted.
import { codec } from '../store/codec.js';
import { checkInputId, MAX_INPUT_BYTES, type LoggedInput } from './inputs.js';

/** The most bytes one waiting input (its record: the input, id, origin and flags) may take under in/. */
export const MAX_LOGGED_INPUT_BYTES = MAX_INPUT_BYTES + 4096;

export interface PendingInput extends LoggedInput {
  readonly rev: string;
  readonly bytes: number;
  /**
   * Set for a key under in/ that is not an input a replica could apply (bytes
   * that do not decode, no record, an id that is not its key's or not a valid
   * id): the cutter skips it and deletes it, so anyone with etcd access can
   * neither halt every replica nor stop the cutter with one write.
   */
  readonly poison?: { readonly key: string; readonly why: string };
}

// One waiting input as the cutter sees it; never throws (see PendingInput.poison).
export function readPendingInput(key: string, value: Buffer, rev: string): PendingInput {
  const poison = (why: string): PendingInput => ({ id: '', origin: '', input: undefined as never, rev, bytes: value.length, poison: { key, why } });
  // Written around the replicas' and the CLI's checks (break-15c #1): the
  // block copying it could not be written, and the cutter would retry it for ever.
  if (value.length > MAX_LOGGED_INPUT_BYTES) return poison(`it takes ${value.length} bytes, over the log's limit of ${MAX_LOGGED_INPUT_BYTES} for one input`);
  let decoded: unknown;
  try {
    decoded = codec.decode(value);
  } catch {
    return poison('its bytes do not decode');
  }
  const logged = decoded as Partial<LoggedInput> | null;
  if (typeof logged !== 'object' || logged === null) return poison('it is not a record');
  try {
    checkInputId(logged.id);
  } catch (err) {
    return poison((err as Error).message);
  }
  if (key !== `in/${logged.id}`) return poison(`its id ${JSON.stringify(logged.id)} is not its key's`);
  if (typeof logged.origin !== 'string' || logged.origin.length > 200) return poison('its origin is not a short string');
  return { ...(logged as LoggedInput), rev, bytes: value.length };
}
