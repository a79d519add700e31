/**
 * The objects k8s/ builds, and the plans onboard and offboard make from them: what they keep,
 * change and remove, in which order, and what an interrupted run says.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { PlanInterrupted, PlanRun } from "../../cli/commands/plan-run.ts";
import {
  alreadyApplied,
  applyChange,
  finishingCommand,
  summarizePlan,
} from "../../cli/core/cluster-plan.ts";
import { OFFBOARD_STEPS, planOffboard } from "../../cli/core/offboard-plan.ts";
import { ONBOARD_STEPS, planOnboard } from "../../cli/core/onboard-plan.ts";
import { StepFailure } from "../../cli/ui.ts";
import { celString, refresherIdentity } from "../../k8s/refresher-identity.ts";
import { refresherRbac } from "../../k8s/refresher-rbac.ts";
import { refresherSecretPolicy } from "../../k8s/refresher-secret-policy.ts";
import { webhookConfiguration } from "../../k8s/webhook-configuration.ts";

describe("the objects for a cluster", () => {
  it("are typed values with every name checked, so none can reach YAML or CEL unchecked", () => {
    for (const labelPrefix of ['x.example.com" || true || "', "a\nb", "UPPER.example.com"])
      expect(() => refresherSecretPolicy({ labelPrefix })).toThrow(/not a DNS subdomain/);
    expect(() => refresherIdentity({ refresherNamespace: "ns:evil" })).toThrow(/DNS-1123 label/);
    expect(() => refresherIdentity({ serviceAccount: 'sa"' })).toThrow(/DNS subdomain/);
    expect(() => refresherRbac({ namespaces: ["apps\n"] })).toThrow(/DNS-1123 label/);
  });

  it("quote every value as a CEL string literal that nothing can end early", () => {
    expect(celString('a"b\\c\n')).toBe('"a\\"b\\\\c\\x0a"');
    const [policy] = refresherSecretPolicy({ labelPrefix: "team.example.com" });
    expect(policy.spec?.matchConditions?.[0]?.expression).toBe(
      'request.userInfo.username == "system:serviceaccount:ecr-anywhere:ecr-anywhere-refresher"',
    );
    expect(policy.spec?.variables?.[0]?.expression).toBe('"team.example.com/managed"');
  });

  it("bind the refresher per namespace and carry the ServiceAccounts role only with its bindings", () => {
    const names = (objects: KubernetesObject[]) =>
      objects.map(
        (object) => `${object.kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`,
      );
    const plain = names(refresherRbac({ namespaces: ["apps"] }));
    expect(plain).toContain("RoleBinding/apps/ecr-anywhere-refresher");
    expect(plain).not.toContain("ClusterRole//ecr-anywhere-refresher-serviceaccounts");
    const withAccounts = names(
      refresherRbac({ namespaces: ["apps"], serviceAccountNamespaces: ["apps"] }),
    );
    expect(withAccounts).toContain("ClusterRole//ecr-anywhere-refresher-serviceaccounts");
    expect(withAccounts).toContain("RoleBinding/apps/ecr-anywhere-refresher-serviceaccounts");
  });

  it("leave caBundle out for a Lambda function URL", () => {
    const lambda = webhookConfiguration({ webhookUrl: "https://h/v1/clusters/c/t" });
    expect(lambda.webhooks?.[0]?.clientConfig).toEqual({ url: "https://h/v1/clusters/c/t" });
    const own = webhookConfiguration({ webhookUrl: "https://h/", caPem: "PEM" });
    expect(own.webhooks?.[0]?.clientConfig.caBundle).toBe(Buffer.from("PEM").toString("base64"));
  });
});

describe("a plan", () => {
  const role = refresherRbac({ namespaces: [] })[1] as KubernetesObject;

  it("keeps an object the API server holds as wanted (with its defaults), and updates one that differs", () => {
    const stored = {
      ...role,
      metadata: { ...role.metadata, uid: "u", labels: { ...role.metadata?.labels, other: "x" } },
    };
    expect(alreadyApplied(role, stored)).toBe(true);
    expect(applyChange(role, stored, "s", "r").action).toBe("keep");
    expect(applyChange(role, undefined, "s", "r").action).toBe("create");
    const narrower = { ...stored, rules: [] };
    expect(applyChange(role, narrower, "s", "r")).toMatchObject({ action: "update", object: role });
  });

  it("for onboard puts the record before the webhook, and the old webhook right before ours", () => {
    const [namespace, account] = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "ecr-anywhere" } },
      role,
    ];
    const webhook = webhookConfiguration({ webhookUrl: "https://h/v1/clusters/c/t" });
    const plan = planOnboard({
      clusterId: "c",
      context: "ctx",
      records: "r",
      refresher: [
        { wanted: namespace, existing: namespace },
        { wanted: account, existing: undefined },
      ],
      webhook: [{ wanted: webhook, existing: undefined }],
      replaced: [
        {
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: "MutatingWebhookConfiguration",
          name: "helm",
        },
      ],
      record: "deleted",
    });
    expect(
      plan.changes.map((change) => `${change.action} ${change.ref.name} (${change.step})`),
    ).toEqual([
      `keep ecr-anywhere (${ONBOARD_STEPS.refresher})`,
      `create ecr-anywhere-refresher-namespaces (${ONBOARD_STEPS.refresher})`,
      `update r/c (${ONBOARD_STEPS.record})`,
      `remove helm (${ONBOARD_STEPS.webhook})`,
      `create ecr-anywhere (${ONBOARD_STEPS.webhook})`,
    ]);
  });

  it("for offboard removes the webhook first and the record last, and plans nothing for what is gone", () => {
    const ref = (kind: string, name: string, namespace?: string) => ({
      apiVersion: "v1",
      kind,
      name,
      ...(namespace ? { namespace } : {}),
    });
    const full = planOffboard({
      clusterId: "c",
      records: "r",
      recoveryDays: 7,
      cluster: {
        context: "ctx",
        webhookConfiguration: ref("MutatingWebhookConfiguration", "ecr-anywhere"),
        labelledNamespaces: [ref("Namespace", "apps")],
        refresherObjects: [ref("RoleBinding", "ecr-anywhere-refresher", "apps")],
        refresherNamespace: { ref: ref("Namespace", "ecr-anywhere"), terminating: false },
      },
      record: "live",
    });
    expect(full.changes.map((change) => `${change.action} ${change.ref.kind}`)).toEqual([
      "remove MutatingWebhookConfiguration",
      "update Namespace",
      "remove RoleBinding",
      "remove Namespace",
      "remove ClusterRecord",
    ]);
    expect(full.changes.map((change) => change.step)).toEqual([
      OFFBOARD_STEPS.webhook,
      OFFBOARD_STEPS.labels,
      OFFBOARD_STEPS.refresher,
      OFFBOARD_STEPS.refresher,
      OFFBOARD_STEPS.record(7),
    ]);
    const rest = planOffboard({
      clusterId: "c",
      records: "r",
      recoveryDays: 7,
      cluster: {
        context: "ctx",
        labelledNamespaces: [],
        refresherObjects: [],
        refresherNamespace: { ref: ref("Namespace", "ecr-anywhere"), terminating: true },
      },
      record: "absent",
    });
    expect(summarizePlan(rest)).toBe("2 keep");
  });

  it("interrupted, names what is done, what is left, and the command that finishes it", async () => {
    const plan = planOffboard({
      clusterId: "c",
      records: "r",
      recoveryDays: 7,
      cluster: {
        context: "ctx",
        webhookConfiguration: {
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: "MutatingWebhookConfiguration",
          name: "ecr-anywhere",
        },
        labelledNamespaces: [],
        refresherObjects: [
          { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "x" },
        ],
      },
      record: "live",
    });
    const run = new PlanRun(plan);
    const cluster = {
      apply: () => Promise.reject(new Error("not applied")),
      remove: async (object: KubernetesObject) => {
        if (object.kind === "ClusterRole") throw new Error("HTTP 500: injected");
        return "deleted" as const;
      },
    };
    await run.step(OFFBOARD_STEPS.webhook, cluster);
    const failure = await run
      .step(OFFBOARD_STEPS.refresher, cluster)
      .catch((error: unknown) => new StepFailure(OFFBOARD_STEPS.refresher, [], error));
    const finish = finishingCommand(["--kubeconfig", "/tmp/my kc", "offboard", "c"], {
      context: "ctx",
      addYes: true,
    });
    const message = new PlanInterrupted(failure as StepFailure, run, finish).message;
    expect(message).toBe(
      [
        "Remove the refresher's RBAC, ServiceAccount and namespace failed: HTTP 500: injected",
        "  done: remove MutatingWebhookConfiguration ecr-anywhere",
        "  left: remove ClusterRole x; remove ClusterRecord r/c",
        "  to finish, run: ecr-anywhere --context ctx --kubeconfig '/tmp/my kc' offboard c --yes",
      ].join("\n"),
    );
  });
});
