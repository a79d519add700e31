/**
 * Seals and opens the refresher's kubeconfig with KMS (core/envelope.ts holds the cipher): one
 * GenerateDataKey per seal and one Decrypt per open, always under the encryption context
 * {purpose: "ecr-anywhere-refresher-kubeconfig", clusterId}, which is what the refresher's IAM grant
 * on the record key requires. A data key in the clear lives only for the one call and is zeroed.
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import {
  type KubeconfigEnvelope,
  kubeconfigContext,
  openKubeconfig,
  sealKubeconfig,
} from "../core/envelope.ts";

export interface OpenedKubeconfig {
  readonly kubeconfig: string;
  /** The key that sealed it (its ARN), as KMS reports it. */
  readonly keyArn: string;
}

export class KubeconfigSeal {
  readonly #kms: KMSClient;
  readonly #keyArn: string | undefined;

  /** `keyArn`: the record key; when set, only kubeconfigs sealed under it open. */
  constructor(kms: KMSClient, keyArn: string | undefined) {
    this.#kms = kms;
    this.#keyArn = keyArn;
  }

  /**
   * Seals under the record key this seal was made with; without one, under `fallbackKeyArn` (the
   * key that sealed the kubeconfig being replaced).
   */
  async seal(
    clusterId: string,
    kubeconfig: string,
    signal?: AbortSignal,
    fallbackKeyArn?: string,
  ): Promise<KubeconfigEnvelope> {
    const keyArn = this.#keyArn ?? fallbackKeyArn;
    if (!keyArn) throw new Error("no record key to seal the kubeconfig with");
    const dataKey = await this.#kms.send(
      new GenerateDataKeyCommand({
        KeyId: keyArn,
        KeySpec: "AES_256",
        EncryptionContext: kubeconfigContext(clusterId),
      }),
      { abortSignal: signal },
    );
    if (!dataKey.Plaintext || !dataKey.CiphertextBlob)
      throw new Error("KMS GenerateDataKey returned no data key");
    try {
      return sealKubeconfig(
        kubeconfig,
        { plaintext: dataKey.Plaintext, encrypted: dataKey.CiphertextBlob },
        clusterId,
      );
    } finally {
      dataKey.Plaintext.fill(0);
    }
  }

  async open(
    clusterId: string,
    envelope: KubeconfigEnvelope,
    signal?: AbortSignal,
  ): Promise<OpenedKubeconfig> {
    const dataKey = await this.#kms
      .send(
        new DecryptCommand({
          CiphertextBlob: Buffer.from(envelope.edk, "base64"),
          EncryptionContext: kubeconfigContext(clusterId),
          ...(this.#keyArn === undefined ? {} : { KeyId: this.#keyArn }),
        }),
        { abortSignal: signal },
      )
      .catch((error: unknown) => {
        // KMS's own messages are often empty ("UnknownError"): say what was refused.
        const { name, message } = error instanceof Error ? error : new Error(String(error));
        throw new Error(
          `KMS did not open the kubeconfig data key of ${clusterId}: ${name}${message && message !== "UnknownError" ? `: ${message}` : ""}`,
          { cause: error },
        );
      });
    if (!dataKey.Plaintext) throw new Error("KMS Decrypt returned no data key");
    try {
      return {
        kubeconfig: openKubeconfig(envelope, dataKey.Plaintext, clusterId),
        keyArn: dataKey.KeyId ?? "",
      };
    } finally {
      dataKey.Plaintext.fill(0);
    }
  }
}
