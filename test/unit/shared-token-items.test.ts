/**
 * The shared token table's items across versions: tokens name their kind, items written before
 * kinds had names (only the fips/ecrPublic flags) still read as the right kind, and new items keep
 * those flags for environments of that version.
 */
import type { AttributeValue, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { DynamoTokenStore } from "../../functions/adapters/shared-tokens.ts";
import type { EcrToken } from "../../functions/core/tokens.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");

/** A DynamoDB client holding one item: what GetItem answers, and the last PutItem's item. */
function table(item?: Record<string, AttributeValue>) {
  const state: { item: Record<string, AttributeValue> | undefined } = { item };
  const client = {
    send: async (command: { constructor: { name: string }; input: { Item?: unknown } }) => {
      if (command.constructor.name === "GetItemCommand") return { Item: state.item };
      if (command.constructor.name === "PutItemCommand")
        state.item = command.input.Item as Record<string, AttributeValue>;
      return {};
    },
  } as unknown as DynamoDBClient;
  return { state, store: new DynamoTokenStore("tokens", client) };
}

function oldItem(flags: { fips: boolean; ecrPublic: boolean }): Record<string, AttributeValue> {
  return {
    pk: { S: "hash" },
    region: { S: "us-east-1" },
    fips: { BOOL: flags.fips },
    ecrPublic: { BOOL: flags.ecrPublic },
    username: { S: "AWS" },
    password: { S: "secret" },
    expiresAtMs: { N: String(NOW + 3600_000) },
    reuseUntilMs: { N: String(NOW + 1800_000) },
    expiresAt: { N: String((NOW + 3600_000) / 1000) },
  };
}

const signal = AbortSignal.timeout(5000);

describe("shared token items", () => {
  it("reads items written before kinds had names as the kind their flags meant", async () => {
    for (const [flags, kind] of [
      [{ fips: false, ecrPublic: false }, "ecr"],
      [{ fips: true, ecrPublic: false }, "ecr"],
      [{ fips: false, ecrPublic: true }, "ecr-public"],
    ] as const) {
      const { store } = table(oldItem(flags));
      expect(await store.read("key", NOW, signal)).toEqual({
        token: {
          kind,
          region: "us-east-1",
          fips: flags.fips,
          username: "AWS",
          password: "secret",
          expiresAtMs: NOW + 3600_000,
        },
        reuseUntilMs: NOW + 1800_000,
      });
    }
  });

  it("writes the kind, and the flags older environments read, and reads it back", async () => {
    const { state, store } = table();
    for (const kind of ["ecr-public", "ecr", "example"]) {
      const token: EcrToken = {
        kind,
        region: "us-east-1",
        fips: false,
        username: "AWS",
        password: `secret-${kind}`,
        expiresAtMs: NOW + 3600_000,
      };
      await store.write("key", { token, reuseUntilMs: NOW + 1800_000 }, signal);
      expect(state.item).toMatchObject({
        kind: { S: kind },
        fips: { BOOL: false },
        ecrPublic: { BOOL: kind === "ecr-public" },
      });
      expect(await store.read("key", NOW, signal)).toEqual({
        token,
        reuseUntilMs: NOW + 1800_000,
      });
    }
  });
});
