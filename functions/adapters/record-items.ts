/**
 * Cluster record items in DynamoDB's attribute-value form, and back: plain JSON values (strings,
 * numbers, booleans, null, lists, maps) only, so an item reads as the JSON the schemas in
 * core/cluster-record.ts validate, and `aws dynamodb get-item` shows what docs/contract.md
 * describes. No I/O.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";

export type Item = Record<string, AttributeValue>;

/** A JSON value as an attribute value; undefined fields of objects are left out. */
export function toAttribute(value: unknown): AttributeValue {
  if (value === null) return { NULL: true };
  switch (typeof value) {
    case "string":
      return { S: value };
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("a number attribute must be finite");
      return { N: String(value) };
    case "boolean":
      return { BOOL: value };
    case "object":
      return Array.isArray(value)
        ? { L: value.map(toAttribute) }
        : { M: toItem(value as Record<string, unknown>) };
    default:
      throw new TypeError(`a ${typeof value} cannot be stored in a cluster record`);
  }
}

/** An object as an item (or a map attribute's value). */
export function toItem(value: Readonly<Record<string, unknown>>): Item {
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, field]) => field !== undefined)
      .map(([name, field]) => [name, toAttribute(field)]),
  );
}

/**
 * An attribute value as JSON. Types a record never holds (binary, sets) read as a marker object
 * the schemas refuse, naming the attribute, rather than being dropped.
 */
export function fromAttribute(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.L !== undefined) return value.L.map(fromAttribute);
  if (value.M !== undefined) return fromItem(value.M);
  return { unsupportedAttributeType: Object.keys(value).find((key) => key !== "$unknown") };
}

export function fromItem(item: Readonly<Item>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(item).map(([name, field]) => [name, fromAttribute(field)]),
  );
}
