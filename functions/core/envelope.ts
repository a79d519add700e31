/**
 * The refresher's kubeconfig sealed client-side (docs/contract.md, "Cluster records, layout 2"):
 * AES-256-GCM under a data key that KMS generated with the record key and the encryption context
 * {purpose, clusterId}; the data key is stored only encrypted (`edk`). The table's own encryption
 * is AWS-owned, so whoever may read the table still needs kms:Decrypt with that context to read a
 * kubeconfig. No I/O here: the KMS calls are in adapters/kubeconfig-seal.ts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import * as v from "valibot";

/** The encryption context's `purpose`: the refresher's IAM grant is conditioned on it. */
export const KUBECONFIG_PURPOSE = "ecr-anywhere-refresher-kubeconfig";
export const ENVELOPE_ALG = "AES-256-GCM";
const IV_BYTES = 12;
const TAG_BYTES = 16;

const base64Of = (bytes?: number) =>
  v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64"),
    v.check(
      (text) => bytes === undefined || Buffer.from(text, "base64").length === bytes,
      `${bytes} bytes of base64`,
    ),
  );

export const KubeconfigEnvelopeSchema = v.strictObject({
  alg: v.literal(ENVELOPE_ALG),
  /** The data key, encrypted by KMS under the record key and `kubeconfigContext(clusterId)`. */
  edk: v.pipe(base64Of(), v.nonEmpty()),
  iv: base64Of(IV_BYTES),
  tag: base64Of(TAG_BYTES),
  ct: base64Of(),
});

export type KubeconfigEnvelope = v.InferOutput<typeof KubeconfigEnvelopeSchema>;

/** The KMS encryption context of a cluster's kubeconfig data key. */
export function kubeconfigContext(clusterId: string): Record<string, string> {
  return { purpose: KUBECONFIG_PURPOSE, clusterId };
}

/** A data key as KMS GenerateDataKey returns it: in the clear for this use only, and encrypted. */
export interface DataKey {
  readonly plaintext: Uint8Array;
  readonly encrypted: Uint8Array;
}

/**
 * Seals a kubeconfig. The cluster id is also the cipher's additional data, so a sealed kubeconfig
 * copied into another cluster's item does not open, even with its data key.
 */
export function sealKubeconfig(
  kubeconfig: string,
  dataKey: DataKey,
  clusterId: string,
  iv: Uint8Array = randomBytes(IV_BYTES),
): KubeconfigEnvelope {
  const cipher = createCipheriv("aes-256-gcm", dataKey.plaintext, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(clusterId));
  const ct = Buffer.concat([cipher.update(kubeconfig, "utf8"), cipher.final()]);
  return {
    alg: ENVELOPE_ALG,
    edk: Buffer.from(dataKey.encrypted).toString("base64"),
    iv: Buffer.from(iv).toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    ct: ct.toString("base64"),
  };
}

/** Opens a sealed kubeconfig with its data key in the clear; throws when anything was altered. */
export function openKubeconfig(
  envelope: KubeconfigEnvelope,
  plaintextKey: Uint8Array,
  clusterId: string,
): string {
  const decipher = createDecipheriv(
    "aes-256-gcm",
    plaintextKey,
    Buffer.from(envelope.iv, "base64"),
    { authTagLength: TAG_BYTES },
  );
  decipher.setAAD(additionalData(clusterId));
  decipher.setAuthTag(Buffer.from(envelope.tag, "base64"));
  try {
    return Buffer.concat([
      decipher.update(Buffer.from(envelope.ct, "base64")),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    // Node's message says nothing more; this one says where to look.
    throw new Error(`the sealed kubeconfig of ${clusterId} does not open: altered, or not its own`);
  }
}

function additionalData(clusterId: string): Buffer {
  return Buffer.from(`${KUBECONFIG_PURPOSE}:${clusterId}`, "utf8");
}
