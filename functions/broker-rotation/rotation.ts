/**
 * The token broker's key rotation: one run lists the user's access keys and reads the stored one,
 * plans (core/broker-key.ts) and carries the plan out. A new key is stored before anything can use
 * it; when storing fails, the new key is deleted again, so no key exists that nothing stored.
 * Logs name keys by their last four characters only.
 */
import {
  type AccessKeys,
  type BrokerKeyStore,
  planRotation,
  type RotationStep,
} from "../core/broker-key.ts";

export interface RotationDependencies {
  readonly keys: AccessKeys;
  readonly store: BrokerKeyStore;
  readonly userName: string;
  readonly now: () => number;
  readonly log: (message: string, details: Readonly<Record<string, unknown>>) => void;
}

export interface RotationReport {
  readonly created: boolean;
  readonly deleted: number;
}

/** Enough to tell keys apart in the IAM console, not enough to be one. */
export function keyHint(accessKeyId: string): string {
  return `…${accessKeyId.slice(-4)}`;
}

export async function rotateBrokerKey(
  deps: RotationDependencies,
  signal: AbortSignal,
): Promise<RotationReport> {
  const [keys, stored] = await Promise.all([
    deps.keys.list(deps.userName, signal),
    deps.store.read(signal),
  ]);
  const steps = planRotation({ keys, stored, nowMs: deps.now() });
  if (steps.length === 0)
    deps.log("broker key is current", {
      keys: keys.length,
      key: stored && keyHint(stored.accessKeyId),
    });
  let created = false;
  let deleted = 0;
  for (const step of steps) {
    if (step.action === "delete") {
      await deleteKey(deps, step, signal);
      deleted++;
    } else {
      await createAndStore(deps, step, signal);
      created = true;
    }
  }
  return { created, deleted };
}

async function deleteKey(
  deps: RotationDependencies,
  step: Extract<RotationStep, { action: "delete" }>,
  signal: AbortSignal,
): Promise<void> {
  try {
    await deps.keys.delete(deps.userName, step.accessKeyId, signal);
  } catch (error) {
    // Gone already (a run that failed after deleting it, or a person): what was planned holds.
    if ((error as Error).name !== "NoSuchEntity") throw error;
  }
  deps.log("broker key deleted", { key: keyHint(step.accessKeyId), reason: step.reason });
}

async function createAndStore(
  deps: RotationDependencies,
  step: Extract<RotationStep, { action: "create" }>,
  signal: AbortSignal,
): Promise<void> {
  const key = await deps.keys.create(deps.userName, signal);
  try {
    await deps.store.write(
      {
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        storedAtMs: deps.now(),
      },
      signal,
    );
  } catch (error) {
    await deps.keys.delete(deps.userName, key.accessKeyId, signal).catch(() => undefined);
    throw error;
  }
  deps.log("broker key created and stored", { key: keyHint(key.accessKeyId), reason: step.reason });
}

/** When the stack is deleted: IAM refuses to delete a user that still has access keys. */
export async function removeBrokerKeys(
  deps: RotationDependencies,
  signal: AbortSignal,
): Promise<number> {
  let keys: Awaited<ReturnType<AccessKeys["list"]>>;
  try {
    keys = await deps.keys.list(deps.userName, signal);
  } catch (error) {
    // The user is gone already: nothing left that could block its deletion.
    if ((error as Error).name === "NoSuchEntity") return 0;
    throw error;
  }
  for (const key of keys) {
    await deleteKey(
      deps,
      { action: "delete", accessKeyId: key.accessKeyId, reason: "stack deleted" },
      signal,
    );
  }
  return keys.length;
}
