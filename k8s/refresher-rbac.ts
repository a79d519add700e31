/**
 * The refresher's identity in a cluster, with the least it needs: its namespace and ServiceAccount,
 * and RBAC whose every permission says why it is there. Pure values; onboard applies them, offboard
 * removes them, `--dry-run` renders them as YAML.
 */
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Namespace,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  checkNamespaceName,
  ECR_ANYWHERE_NAME_LABEL,
  type RefresherIdentity,
  type RefresherIdentityOptions,
  refresherIdentity,
  refresherSubject,
} from "./refresher-identity.ts";

const RBAC = "rbac.authorization.k8s.io/v1";

export type RefresherRbacObject =
  | V1ServiceAccount
  | V1ClusterRole
  | V1ClusterRoleBinding
  | V1Role
  | V1RoleBinding;

export interface RefresherRbacOptions extends RefresherIdentityOptions {
  /** Namespaces the refresher manages Secrets in (the enabled ones). */
  readonly namespaces: readonly string[];
  /** Namespaces where it may add the Secret to ServiceAccounts (ensure.serviceAccounts). */
  readonly serviceAccountNamespaces?: readonly string[];
}

/** Names of the cluster-wide and per-namespace objects. */
const REFRESHER_OBJECT_NAMES = {
  namespaces: "ecr-anywhere-refresher-namespaces",
  token: "ecr-anywhere-refresher-token",
  namespaceEvents: "ecr-anywhere-refresher-namespace-events",
  secrets: "ecr-anywhere-refresher-secrets",
  namespaceBinding: "ecr-anywhere-refresher",
  serviceAccounts: "ecr-anywhere-refresher-serviceaccounts",
} as const;

/** Every object the refresher needs in a cluster, in apply order. */
export function refresherRbac(options: RefresherRbacOptions): RefresherRbacObject[] {
  const identity = refresherIdentity(options);
  const serviceAccountNamespaces = options.serviceAccountNamespaces ?? [];
  return [
    ...refresherBase(identity),
    // Its ClusterRole only with a binding to it: an unbound role is one more object to own.
    ...(serviceAccountNamespaces.length > 0 ? [refresherServiceAccountsRole()] : []),
    ...options.namespaces.map((namespace) => refresherNamespaceBinding(identity, namespace)),
    ...serviceAccountNamespaces.map((namespace) =>
      refresherServiceAccountsBinding(identity, namespace),
    ),
  ];
}

/** The refresher's own namespace (labelled by the CLI, so offboard knows it created it). */
export function refresherNamespace(options: RefresherIdentityOptions = {}): V1Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: refresherIdentity(options).refresherNamespace, labels: labels() },
  };
}

/**
 * The ServiceAccount and what it needs outside the enabled namespaces. Why each permission:
 *   namespaces: list         find the namespaces labelled <prefix>/namespace=enabled
 *   serviceaccounts/token:   renew its own token (TokenRequest), so no long-lived token exists;
 *     create                 limited to its own ServiceAccount by resourceNames
 *   events (events.k8s.io):  record an ensure it cannot meet as an Event on the Namespace; a
 *     create, patch          cluster-scoped object's Events must live in "default", so only there
 * Secret, Event and ServiceAccount permissions are granted per enabled namespace
 * (`refresherNamespaceBinding`), so it cannot read Secrets anywhere else.
 */
function refresherBase(identity: RefresherIdentity): RefresherRbacObject[] {
  const { refresherNamespace: namespace } = identity;
  const names = REFRESHER_OBJECT_NAMES;
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: {
        name: identity.serviceAccount,
        namespace,
        labels: labels({ "app.kubernetes.io/component": "refresher" }),
      },
    },
    clusterRole(names.namespaces, [
      { apiGroups: [""], resources: ["namespaces"], verbs: ["list"] },
    ]),
    {
      apiVersion: RBAC,
      kind: "ClusterRoleBinding",
      metadata: { name: names.namespaces, labels: labels() },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: names.namespaces,
      },
      subjects: [refresherSubject(identity)],
    },
    role(names.token, namespace, [
      {
        apiGroups: [""],
        resources: ["serviceaccounts/token"],
        resourceNames: [identity.serviceAccount],
        verbs: ["create"],
      },
    ]),
    roleBinding(identity, names.token, namespace, "Role"),
    role(names.namespaceEvents, "default", [
      { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
    ]),
    roleBinding(identity, names.namespaceEvents, "default", "Role"),
    refresherSecretsRole(),
  ];
}

/**
 * Bound per enabled namespace (`refresherNamespaceBinding`), never cluster-wide.
 *   secrets: list     find managed Secrets (label selector, paginated)
 *   secrets: patch    set marked_for_update_at, which sends the Secret through the webhook
 *   secrets: create   ensure mode: create a missing managed Secret for the webhook to fill
 *   events: create    record a failed refresh (and the recovery) on the Secret
 *   events: patch     count a repeat in the Event's series instead of adding another Event
 * No get, update, delete or watch: the refresher reads Secrets only by listing, and a patch
 * returns the stored result.
 */
function refresherSecretsRole(): V1ClusterRole {
  return clusterRole(REFRESHER_OBJECT_NAMES.secrets, [
    { apiGroups: [""], resources: ["secrets"], verbs: ["list", "patch", "create"] },
    { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  ]);
}

/**
 * Made only for a record that uses ensure.serviceAccounts, and bound only in its namespaces
 * (`refresherServiceAccountsBinding`): without them nothing would use it.
 *   get, patch   add the managed Secret to imagePullSecrets, keeping existing entries
 * Named here for offboard too, which removes it whether or not this onboard made it.
 */
export function refresherServiceAccountsRole(): V1ClusterRole {
  return clusterRole(REFRESHER_OBJECT_NAMES.serviceAccounts, [
    { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get", "patch"] },
  ]);
}

/** Lets the refresher manage Secrets in one enabled namespace. One per namespace. */
export function refresherNamespaceBinding(
  identity: RefresherIdentity,
  namespace: string,
): V1RoleBinding {
  return roleBinding(
    identity,
    REFRESHER_OBJECT_NAMES.namespaceBinding,
    checkNamespaceName(namespace),
    "ClusterRole",
    REFRESHER_OBJECT_NAMES.secrets,
  );
}

/**
 * Lets the refresher add the managed Secret to ServiceAccounts' imagePullSecrets in one namespace
 * (only where the cluster record's ensure.serviceAccounts is used). One per namespace.
 */
export function refresherServiceAccountsBinding(
  identity: RefresherIdentity,
  namespace: string,
): V1RoleBinding {
  return roleBinding(
    identity,
    REFRESHER_OBJECT_NAMES.serviceAccounts,
    checkNamespaceName(namespace),
    "ClusterRole",
  );
}

type PolicyRules = NonNullable<V1ClusterRole["rules"]>;

function labels(extra: Record<string, string> = {}): Record<string, string> {
  return { ...ECR_ANYWHERE_NAME_LABEL, ...extra };
}

function clusterRole(name: string, rules: PolicyRules): V1ClusterRole {
  return { apiVersion: RBAC, kind: "ClusterRole", metadata: { name, labels: labels() }, rules };
}

function role(name: string, namespace: string, rules: PolicyRules): V1Role {
  return { apiVersion: RBAC, kind: "Role", metadata: { name, namespace, labels: labels() }, rules };
}

function roleBinding(
  identity: RefresherIdentity,
  name: string,
  namespace: string,
  roleKind: "Role" | "ClusterRole",
  roleName = name,
): V1RoleBinding {
  return {
    apiVersion: RBAC,
    kind: "RoleBinding",
    metadata: { name, namespace, labels: labels() },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name: roleName },
    subjects: [refresherSubject(identity)],
  };
}
