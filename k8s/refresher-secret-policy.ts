/**
 * Narrows what the refresher's Secret permissions allow (kube-apiserver 1.30+, where
 * ValidatingAdmissionPolicy is GA). RBAC cannot say "only managed dockerconfigjson Secrets": with
 * create and patch on secrets alone, whoever held the refresher's token could create a
 * kubernetes.io/service-account-token Secret for any ServiceAccount in an enabled namespace and
 * read it back, or rewrite any Secret there. This policy lets the refresher's ServiceAccount create
 * and change only Secrets of type kubernetes.io/dockerconfigjson labelled <prefix>/managed=true,
 * before and after the change. It does not narrow reads: list and get are not admission requests.
 */
import type {
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
} from "@kubernetes/client-node";
import {
  celString,
  ECR_ANYWHERE_NAME_LABEL,
  type RefresherIdentityOptions,
  refresherIdentity,
} from "./refresher-identity.ts";

/** Kubernetes minor version from which ValidatingAdmissionPolicy is GA (admissionregistration/v1). */
export const SECRET_POLICY_MINIMUM_MINOR = 30;

const SECRET_POLICY_NAME = "ecr-anywhere-refresher-secrets";

const ADMISSION = "admissionregistration.k8s.io/v1";

/** A managed dockerconfigjson Secret, as `object` or `oldObject` in CEL. */
const isManaged = (object: string) =>
  `${object}.type == "kubernetes.io/dockerconfigjson" && has(${object}.metadata.labels) && variables.managedLabel in ${object}.metadata.labels && ${object}.metadata.labels[variables.managedLabel] == "true"`;

/** The policy and its binding, in apply order. */
export function refresherSecretPolicy(
  options: RefresherIdentityOptions = {},
): [V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding] {
  const identity = refresherIdentity(options);
  const username = `system:serviceaccount:${identity.refresherNamespace}:${identity.serviceAccount}`;
  const metadata = { name: SECRET_POLICY_NAME, labels: { ...ECR_ANYWHERE_NAME_LABEL } };
  return [
    {
      apiVersion: ADMISSION,
      kind: "ValidatingAdmissionPolicy",
      metadata,
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [""],
              apiVersions: ["v1"],
              operations: ["CREATE", "UPDATE"],
              resources: ["secrets"],
            },
          ],
        },
        matchConditions: [
          {
            name: "only-the-refresher",
            expression: `request.userInfo.username == ${celString(username)}`,
          },
        ],
        variables: [
          { name: "managedLabel", expression: celString(`${identity.labelPrefix}/managed`) },
        ],
        validations: [
          {
            expression: isManaged("object"),
            message:
              "the ecr-anywhere refresher may create and change only managed kubernetes.io/dockerconfigjson Secrets",
            reason: "Forbidden",
          },
          {
            expression: `request.operation != "UPDATE" || (${isManaged("oldObject")})`,
            message:
              "the ecr-anywhere refresher may change only Secrets that were managed dockerconfigjson Secrets already",
            reason: "Forbidden",
          },
        ],
      },
    },
    {
      apiVersion: ADMISSION,
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { ...metadata, labels: { ...metadata.labels } },
      spec: { policyName: SECRET_POLICY_NAME, validationActions: ["Deny"] },
    },
  ];
}
