/**
 * Who the refresher is in a cluster, shared by every object in this folder: its namespace and
 * ServiceAccount, the labels that mark ecr-anywhere's objects, and the one rule for names that go
 * into these objects.
 *
 * The rule: every name is checked here before it is used (a namespace or ServiceAccount name is a
 * DNS-1123 label or subdomain, the label prefix a DNS subdomain, as `contractNames` checks), and a
 * name placed inside a CEL expression is also quoted by `celString`. Objects are plain typed values,
 * so no name is ever spliced into YAML text.
 */
import type { RbacV1Subject } from "@kubernetes/client-node";
import { isDns1123Label } from "../functions/core/cluster-record.ts";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  isDns1123Subdomain,
} from "../functions/core/contract.ts";

export const REFRESHER_NAMESPACE = "ecr-anywhere";
export const REFRESHER_SERVICE_ACCOUNT = "ecr-anywhere-refresher";

/** On every object ecr-anywhere puts in a cluster. */
export const ECR_ANYWHERE_NAME_LABEL = { "app.kubernetes.io/name": "ecr-anywhere" } as const;

export interface RefresherIdentityOptions {
  /** Namespace of the refresher's ServiceAccount. @default ecr-anywhere */
  readonly refresherNamespace?: string | undefined;
  /** @default ecr-anywhere-refresher */
  readonly serviceAccount?: string | undefined;
  /** @default ecr-anywhere.centml.ai */
  readonly labelPrefix?: string | undefined;
}

export interface RefresherIdentity {
  readonly refresherNamespace: string;
  readonly serviceAccount: string;
  readonly labelPrefix: string;
}

/** The options with their defaults, each name checked (a bad one throws: it is a caller's bug). */
export function refresherIdentity(options: RefresherIdentityOptions = {}): RefresherIdentity {
  const identity = {
    refresherNamespace: options.refresherNamespace ?? REFRESHER_NAMESPACE,
    serviceAccount: options.serviceAccount ?? REFRESHER_SERVICE_ACCOUNT,
    labelPrefix: contractNames(options.labelPrefix ?? DEFAULT_LABEL_PREFIX).labelPrefix,
  };
  checkNamespaceName(identity.refresherNamespace);
  if (!isDns1123Subdomain(identity.serviceAccount))
    throw new Error(
      `ServiceAccount name ${JSON.stringify(identity.serviceAccount)} is not a DNS subdomain`,
    );
  return identity;
}

export function checkNamespaceName(name: string): string {
  if (!isDns1123Label(name))
    throw new Error(`namespace name ${JSON.stringify(name)} is not a DNS-1123 label`);
  return name;
}

/** The refresher's ServiceAccount as an RBAC subject. */
export function refresherSubject(identity: RefresherIdentity): RbacV1Subject {
  return {
    kind: "ServiceAccount",
    name: identity.serviceAccount,
    namespace: identity.refresherNamespace,
  };
}

/**
 * A CEL string literal holding `value` exactly: backslash, quote and every control character
 * escaped, so no value can end the literal early. (The names are checked already; this is the
 * second wall.)
 */
export function celString(value: string): string {
  const escaped = [...value]
    .map((character) => {
      if (character === "\\") return "\\\\";
      if (character === '"') return '\\"';
      const code = character.codePointAt(0) ?? 0;
      if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, "0")}`;
      return character;
    })
    .join("");
  return `"${escaped}"`;
}
