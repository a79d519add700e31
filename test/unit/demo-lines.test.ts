/** What the demo prints about itself (scripts/demo-lines.ts), and the command it suggests. */
import { describe, expect, it } from "vitest";
import { InputError } from "../../cli/core/inputs.ts";
import type { Factory } from "../../cli/factory.ts";
import { buildProgram } from "../../cli/program.ts";
import { BuildWatch, duration, REAL_CLUSTER_ONBOARD, stepLine } from "../../scripts/demo-lines.ts";

describe("the demo's timings", () => {
  it("are each step's own, in seconds, then minutes and seconds", () => {
    expect(duration(4_249)).toBe("4.2 s");
    expect(duration(59_940)).toBe("59.9 s");
    expect(duration(631_400)).toBe("10 min 31 s");
    expect(stepLine("built the Lambda bundles", 3_210)).toBe("  built the Lambda bundles (3.2 s)");
  });

  it("say what the control-plane build is building and for how long, nothing between binaries", () => {
    let now = 0;
    const watch = new BuildWatch(() => now);
    expect(watch.progress()).toBeUndefined();
    watch.observe(
      "go: fetching go1.26.8 (the golang.org/toolchain module, about 70 MB) from https://proxy.golang.org/… (first time only)\n" +
        "building etcd from go.etcd.io/etcd/server/v3 with go1.26.8 (first time only; cached in /c)\n",
    );
    now = 75_000;
    // A line may arrive in two chunks.
    watch.observe("built etcd in 75 s\nbuilding kube-apiserver from k8s.io/kubern");
    watch.observe("etes/cmd/kube-apiserver with go1.26.8 (first time only; cached in /c)\n");
    now = 205_000;
    expect(watch.progress()).toBe(
      "    · building kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver): 2 min 10 s so far",
    );
    watch.observe("built kube-apiserver in 130 s\n");
    expect(watch.progress()).toBeUndefined();
  });
});

describe("the onboard command the demo suggests for your own cluster", () => {
  /** Stands for every adapter: reaching one means the flags passed every check before it. */
  class ReachedTheCluster extends Error {}
  const factory = new Proxy({} as Factory, {
    get: (_, property) => {
      if (property === "localTestBed") return false;
      if (property === "then") return undefined;
      throw new ReachedTheCluster(String(property));
    },
  });
  const filled = (args: readonly string[]) =>
    args.map(
      (arg) =>
        ({
          "<id>": "gke-prod",
          "<hosts>": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
          "<namespaces>": "apps",
          "<api-server-egress-cidrs>": "203.0.113.0/24",
          "<context>": "gke-prod",
        })[arg] ?? arg,
    );
  const onboard = (args: readonly string[]) =>
    buildProgram(() => factory).parseAsync(["node", "ecr-anywhere", ...filled(args)]);

  it("is accepted as printed, placeholders filled in", async () => {
    expect(filled(REAL_CLUSTER_ONBOARD).join(" ")).not.toMatch(/[<>]/);
    await expect(onboard(REAL_CLUSTER_ONBOARD)).rejects.toThrow(ReachedTheCluster);
  });

  it("would be refused without --allowed-source-cidrs (the hint it replaces)", async () => {
    const flag = REAL_CLUSTER_ONBOARD.indexOf("--allowed-source-cidrs");
    const without = REAL_CLUSTER_ONBOARD.filter((_, index) => index !== flag && index !== flag + 1);
    await expect(onboard(without)).rejects.toThrow(InputError);
  });
});
