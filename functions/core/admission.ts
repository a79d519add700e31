/**
 * What the webhook does with an admission request: ignore it, deny it, or write credentials.
 * Pure: the tokens a mutation needs are fetched by the caller and handed to `secretChanges`.
 */
import type { AdmissionRequest } from "./admission-review.ts";
import {
  type ContractNames,
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  MANAGED_VALUE,
} from "./contract.ts";
import { mergeDockerConfig, type RegistryCredential } from "./dockerconfig.ts";
import type { SecretChanges } from "./patch.ts";
import {
  type EcrRegistry,
  REGISTRY_KINDS,
  type RegistryKind,
  selectRegistries,
} from "./registries.ts";
import { type SecretObject, SecretSchema } from "./secret.ts";
import { toRfc3339 } from "./time.ts";
import { parseWith } from "./validation.ts";

export type AdmissionDecision =
  | { readonly kind: "ignore"; readonly reason: string }
  | { readonly kind: "deny"; readonly code: number; readonly message: string }
  | {
      readonly kind: "mutate";
      readonly secret: SecretObject;
      readonly registries: readonly EcrRegistry[];
    };

export function decideAdmission(
  request: AdmissionRequest,
  allowedRegistries: readonly string[],
  names: ContractNames,
  kinds: readonly RegistryKind[] = REGISTRY_KINDS,
): AdmissionDecision {
  const { resource, subResource, operation } = request;
  if (resource.group !== "" || resource.resource !== "secrets" || subResource) {
    return { kind: "ignore", reason: "not a Secret" };
  }
  if (operation !== "CREATE" && operation !== "UPDATE") {
    return { kind: "ignore", reason: `operation ${operation}` };
  }
  const parsed = parseWith(SecretSchema, request.object);
  if (!parsed.ok) {
    return {
      kind: "deny",
      code: 400,
      message: `ecr-anywhere: the Secret in the request is malformed: ${parsed.error}`,
    };
  }
  const secret = parsed.value;
  // Re-checked here: the cluster's objectSelector is configuration we do not control.
  if (secret.metadata?.labels?.[names.managedLabel] !== MANAGED_VALUE) {
    return { kind: "ignore", reason: "not managed" };
  }
  const where = `${request.namespace ?? secret.metadata?.namespace ?? ""}/${request.name ?? secret.metadata?.name ?? ""}`;
  if (secret.type !== DOCKER_CONFIG_JSON_TYPE) {
    return {
      kind: "deny",
      code: 400,
      message: `ecr-anywhere: Secret ${where} is labelled ${names.managedLabel}=${MANAGED_VALUE} but has type "${secret.type ?? "Opaque"}"; managed Secrets must have type ${DOCKER_CONFIG_JSON_TYPE}`,
    };
  }
  const selection = selectRegistries(
    secret.metadata?.annotations?.[names.registriesAnnotation],
    allowedRegistries,
    names.registriesAnnotation,
    kinds,
  );
  if (!selection.ok) {
    return {
      kind: "deny",
      code: 403,
      message: `ecr-anywhere: Secret ${where}: ${selection.message}`,
    };
  }
  return { kind: "mutate", secret, registries: selection.registries };
}

/** The data and annotations a managed Secret gets once its registries' tokens are in hand. */
export function secretChanges(
  secret: SecretObject,
  credentials: readonly RegistryCredential[],
  expiresAtMs: number,
  nowMs: number,
  names: ContractNames,
): SecretChanges {
  return {
    data: {
      [DOCKER_CONFIG_JSON_KEY]: mergeDockerConfig(
        secret.data?.[DOCKER_CONFIG_JSON_KEY],
        credentials,
      ),
    },
    annotations: {
      [names.expiresAtAnnotation]: toRfc3339(expiresAtMs),
      [names.updatedAtAnnotation]: toRfc3339(nowMs),
    },
  };
}
