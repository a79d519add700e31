/**
 * The refresher's sealed kubeconfig: AES-256-GCM under a data key, bound to its cluster, refusing
 * any alteration; and the attribute-value form its items are stored in. Pure (KMS is an adapter).
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fromItem, toAttribute, toItem } from "../../functions/adapters/record-items.ts";
import { parseRefresherItem } from "../../functions/core/cluster-record.ts";
import {
  KubeconfigEnvelopeSchema,
  kubeconfigContext,
  openKubeconfig,
  sealKubeconfig,
} from "../../functions/core/envelope.ts";
import { parseWith } from "../../functions/core/validation.ts";

const KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: r\n  user:\n    token: s3cr3t\n";
const dataKey = () => ({ plaintext: randomBytes(32), encrypted: randomBytes(96) });

describe("a sealed kubeconfig", () => {
  it("opens with its data key for its own cluster, and holds nothing in the clear", () => {
    const key = dataKey();
    const sealed = sealKubeconfig(KUBECONFIG, key, "gke-prod");
    expect(parseWith(KubeconfigEnvelopeSchema, sealed).ok).toBe(true);
    expect(sealed.alg).toBe("AES-256-GCM");
    expect(Buffer.from(sealed.edk, "base64")).toEqual(Buffer.from(key.encrypted));
    expect(JSON.stringify(sealed)).not.toContain("s3cr3t");
    expect(Buffer.from(sealed.ct, "base64").toString("utf8")).not.toContain("s3cr3t");
    expect(openKubeconfig(sealed, key.plaintext, "gke-prod")).toBe(KUBECONFIG);
    // A new IV each time: the same kubeconfig never seals to the same bytes.
    expect(sealKubeconfig(KUBECONFIG, key, "gke-prod").ct).not.toBe(sealed.ct);
  });

  it("does not open altered, with another key, or as another cluster's", () => {
    const key = dataKey();
    const sealed = sealKubeconfig(KUBECONFIG, key, "gke-prod");
    const flipped = Buffer.from(sealed.ct, "base64");
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const refusal = /the sealed kubeconfig of .* does not open/;
    expect(() =>
      openKubeconfig({ ...sealed, ct: flipped.toString("base64") }, key.plaintext, "gke-prod"),
    ).toThrow(refusal);
    expect(() => openKubeconfig(sealed, randomBytes(32), "gke-prod")).toThrow(refusal);
    // Copied into another cluster's item, even with its data key: refused.
    expect(() => openKubeconfig(sealed, key.plaintext, "aks-dev")).toThrow(refusal);
  });

  it("is bound to its cluster in KMS too, by the encryption context the IAM grant names", () => {
    expect(kubeconfigContext("gke-prod")).toEqual({
      purpose: "ecr-anywhere-refresher-kubeconfig",
      clusterId: "gke-prod",
    });
  });

  it("is refused by the schema unless every part is base64 of the right length", () => {
    const sealed = sealKubeconfig(KUBECONFIG, dataKey(), "c");
    for (const bad of [
      { ...sealed, alg: "AES-128-CBC" },
      { ...sealed, iv: Buffer.alloc(8).toString("base64") },
      { ...sealed, tag: "not base64!" },
      { ...sealed, edk: "" },
      { ...sealed, extra: "x" },
    ])
      expect(parseWith(KubeconfigEnvelopeSchema, bad).ok).toBe(false);
  });
});

describe("record items in DynamoDB's attribute values", () => {
  it("round-trip every JSON shape a record holds, leaving undefined fields out", () => {
    const item = {
      layout: 2,
      clusterId: "gke-prod",
      kubeconfig: sealKubeconfig(KUBECONFIG, dataKey(), "gke-prod"),
      ensure: { secretName: "ecr-pull", namespaces: ["apps"], serviceAccounts: [] },
      refresher: { openFailures: ["u-1"], untrackedSince: null, flag: true },
      revision: 3,
      deletedAt: undefined,
    };
    const stored = toItem(item);
    expect(stored.layout).toEqual({ N: "2" });
    expect(stored.ensure?.M?.namespaces).toEqual({ L: [{ S: "apps" }] });
    expect("deletedAt" in stored).toBe(false);
    const { deletedAt: _, ...expected } = item;
    expect(fromItem(stored)).toEqual(expected);
    const parsed = parseRefresherItem({ ...fromItem(stored), refresher: undefined });
    expect(parsed.ok).toBe(true);
  });

  it("read a type a record never holds as something the schemas refuse, and refuse to store a function", () => {
    expect(fromItem({ layout: { SS: ["2"] } })).toEqual({
      layout: { unsupportedAttributeType: "SS" },
    });
    expect(() => toAttribute(() => 1)).toThrow(/cannot be stored/);
    expect(() => toAttribute(Number.NaN)).toThrow(/finite/);
  });
});
