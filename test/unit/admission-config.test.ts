/**
 * Header authentication merged into an API server's own AdmissionConfiguration: the other plugins'
 * configuration (PodSecurity as RKE2 ships it) stays, only the mutating webhook plugin's
 * kubeConfigFile is set, and what cannot be merged safely is refused with the reason.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  AdmissionMergeError,
  absoluteHostPath,
  mergeAdmissionConfiguration,
  newAdmissionConfiguration,
} from "../../cli/core/admission-config.ts";

const PATH = "/etc/kubernetes/ecr-anywhere/webhook-credentials.kubeconfig";

/** As RKE2 writes it for its default pod-security-admission-config-file (abridged). */
const RKE2_POD_SECURITY = `# PodSecurity for every namespace but the system ones
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: PodSecurity
    configuration:
      apiVersion: pod-security.admission.config.k8s.io/v1
      kind: PodSecurityConfiguration
      defaults:
        enforce: "restricted" # hardened profile
        enforce-version: "latest"
      exemptions:
        usernames: []
        runtimeClasses: []
        namespaces: [kube-system, cis-operator-system]
`;

interface Plugin {
  name: string;
  configuration?: Record<string, unknown>;
}

function plugins(text: string): Plugin[] {
  return (parse(text) as { plugins: Plugin[] }).plugins;
}

describe("mergeAdmissionConfiguration", () => {
  it("adds the webhook plugin beside PodSecurity, keeping its configuration and comments", () => {
    const merged = mergeAdmissionConfiguration(RKE2_POD_SECURITY, PATH);
    const [podSecurity, webhook, ...rest] = plugins(merged);
    expect(rest).toEqual([]);
    expect(podSecurity).toEqual(plugins(RKE2_POD_SECURITY)[0]);
    expect(webhook).toEqual({
      name: "MutatingAdmissionWebhook",
      configuration: {
        apiVersion: "apiserver.config.k8s.io/v1",
        kind: "WebhookAdmissionConfiguration",
        kubeConfigFile: PATH,
      },
    });
    expect(merged).toContain("# PodSecurity for every namespace but the system ones");
    expect(merged).toContain("# hardened profile");
    expect(merged.startsWith("# ecr-anywhere: header authentication")).toBe(true);
  });

  it("is idempotent: merging a merged file changes nothing", () => {
    const once = mergeAdmissionConfiguration(RKE2_POD_SECURITY, PATH);
    expect(mergeAdmissionConfiguration(once, PATH)).toBe(once);
  });

  it("sets kubeConfigFile in an existing webhook entry, keeping its other fields, and leaves the validating one alone", () => {
    const existing = `apiVersion: apiserver.k8s.io/v1alpha1
kind: AdmissionConfiguration
plugins:
  - name: ValidatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: ""
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1alpha1
      kind: WebhookAdmission
      kubeConfigFile: ""
      staticManifestsDir: /etc/kubernetes/admission/mutating-webhooks/
`;
    const [validating, mutating] = plugins(mergeAdmissionConfiguration(existing, PATH));
    expect(validating).toEqual(plugins(existing)[0]);
    expect(mutating?.configuration).toEqual({
      apiVersion: "apiserver.config.k8s.io/v1alpha1",
      kind: "WebhookAdmission",
      kubeConfigFile: PATH,
      staticManifestsDir: "/etc/kubernetes/admission/mutating-webhooks/",
    });
  });

  it("reads a JSON file and one without plugins", () => {
    const json = JSON.stringify({
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AdmissionConfiguration",
    });
    const expected = (newAdmissionConfiguration(PATH) as { plugins: Plugin[] }).plugins;
    expect(plugins(mergeAdmissionConfiguration(json, PATH))).toEqual(expected);
    const empty =
      "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n";
    expect(plugins(mergeAdmissionConfiguration(empty, PATH))).toEqual(expected);
  });

  it.each([
    ["a relative kubeConfigFile", RKE2_POD_SECURITY, "webhook.kubeconfig", /absolute path/],
    ["a kubeConfigFile with ..", RKE2_POD_SECURITY, "/etc/../tmp/x", /'\.\.'/],
    ["another kind", "apiVersion: v1\nkind: ConfigMap\n", PATH, /not an AdmissionConfiguration/],
    [
      "an unknown version",
      "apiVersion: apiserver.config.k8s.io/v2\nkind: AdmissionConfiguration\n",
      PATH,
      /not one kube-apiserver reads/,
    ],
    ["two documents", `${RKE2_POD_SECURITY}---\n${RKE2_POD_SECURITY}`, PATH, /exactly one/],
    ["broken YAML", "plugins: [\n", PATH, /not valid YAML/],
    [
      "a plugin configured in a separate file",
      "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n  - name: MutatingAdmissionWebhook\n    path: /etc/kubernetes/webhook.yaml\n",
      PATH,
      /separate file \(path: \/etc\/kubernetes\/webhook.yaml\)/,
    ],
    [
      "an inline configuration of another kind",
      "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n  - name: MutatingAdmissionWebhook\n    configuration:\n      kind: Something\n",
      PATH,
      /not a WebhookAdmissionConfiguration/,
    ],
    [
      "a kubeConfigFile naming another file",
      "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n  - name: MutatingAdmissionWebhook\n    configuration:\n      apiVersion: apiserver.config.k8s.io/v1\n      kind: WebhookAdmissionConfiguration\n      kubeConfigFile: /etc/other.kubeconfig\n",
      PATH,
      /already uses kubeConfigFile \/etc\/other.kubeconfig/,
    ],
  ])("refuses %s", (_, existing, path, message) => {
    expect(() => mergeAdmissionConfiguration(existing, path)).toThrow(AdmissionMergeError);
    expect(() => mergeAdmissionConfiguration(existing, path)).toThrow(message);
  });
});

describe("absoluteHostPath", () => {
  it("accepts an absolute POSIX path and names what is wrong with others", () => {
    expect(absoluteHostPath(PATH)).toBeUndefined();
    expect(absoluteHostPath("etc/x")).toMatch(/absolute/);
    expect(absoluteHostPath("C:\\x")).toMatch(/absolute/);
    expect(absoluteHostPath("/etc/a b")).toMatch(/whitespace/);
  });
});
