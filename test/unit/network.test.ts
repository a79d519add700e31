/** The one classification of API server addresses, and the rules built on it. Pure. */
import { describe, expect, it } from "vitest";
import { apiServerRouteProblem } from "../../cli/core/api-server-route.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { classifyHost, refresherRouteProblem } from "../../functions/core/network.ts";

describe("classifyHost", () => {
  it.each([
    ["127.0.0.1", "local"],
    ["127.8.9.10", "local"],
    ["0.0.0.0", "local"],
    ["169.254.169.254", "local"],
    ["[::1]", "local"],
    ["::", "local"],
    ["fe80::1", "local"],
    ["fd00:ec2::254", "local"],
    ["::ffff:127.0.0.1", "local"],
    ["localhost", "local"],
    ["LOCALHOST", "local"],
    ["api.localhost", "local"],
    ["localhost.", "local"],
    ["api.localhost.", "local"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.0.1", "private"],
    ["100.64.0.1", "private"],
    ["100.127.255.255", "private"],
    ["[fd12:3456::1]", "private"],
    ["fc00::1", "private"],
    ["::ffff:10.0.0.1", "private"],
    ["172.32.0.1", "public"],
    ["100.128.0.1", "public"],
    ["203.0.113.7", "public"],
    ["2001:db8::1", "public"],
    ["k3s.example.com", "name"],
    ["localhost.example.com", "name"],
  ])("%s is %s", (host, expected) => {
    expect(classifyHost(host)).toBe(expected);
  });
});

describe("refresherRouteProblem", () => {
  it("refuses local addresses in every network mode", () => {
    for (const network of ["public", "static-egress", "vpc"] as const)
      expect(refresherRouteProblem("https://127.0.0.1:6443", network)).toMatch(/loopback/);
  });

  it("refuses private addresses except from the user's VPC", () => {
    expect(refresherRouteProblem("https://10.0.0.1:6443", "public")).toMatch(
      /private address .* \(network public\) cannot reach/,
    );
    expect(refresherRouteProblem("https://10.0.0.1:6443", "static-egress")).toMatch(/private/);
    expect(refresherRouteProblem("https://10.0.0.1:6443", "vpc")).toBeUndefined();
  });

  it("accepts public addresses and host names, which are not resolved", () => {
    expect(refresherRouteProblem("https://203.0.113.7:6443", "public")).toBeUndefined();
    expect(refresherRouteProblem("https://k3s.internal.example:6443", "public")).toBeUndefined();
  });
});

describe("apiServerRouteProblem", () => {
  const route = { network: "public", localTestBed: false } as const;

  it("checks the kubeconfig's server, or --api-server-url instead when given", () => {
    expect(apiServerRouteProblem({ ...route, kubeconfigServer: "https://127.0.0.1:6443" })).toMatch(
      /^the kubeconfig's API server 127\.0\.0\.1:6443 is .*; pass --api-server-url/,
    );
    expect(
      apiServerRouteProblem({
        ...route,
        kubeconfigServer: "https://127.0.0.1:6443",
        apiServerUrl: "https://203.0.113.7:6443",
      }),
    ).toBeUndefined();
    expect(
      apiServerRouteProblem({
        ...route,
        kubeconfigServer: "https://203.0.113.7:6443",
        apiServerUrl: "https://192.168.0.9:6443",
      }),
    ).toMatch(/^--api-server-url: 192\.168\.0\.9:6443 is a private address/);
  });

  it("lets the local test bed through", () => {
    expect(
      apiServerRouteProblem({
        ...route,
        localTestBed: true,
        kubeconfigServer: "https://127.0.0.1:6443",
      }),
    ).toBeUndefined();
  });
});

describe("the refresher's own rule uses the same classification", () => {
  const kubeconfig = (server: string) => `
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}", certificate-authority-data: Y2E= } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;
  it("refuses local servers and leaves private ones to the network (a VPC may reach them)", () => {
    expect(checkKubeconfig(kubeconfig("https://localhost:6443"))).toMatchObject({ ok: false });
    expect(checkKubeconfig(kubeconfig("https://[::ffff:169.254.169.254]"))).toMatchObject({
      ok: false,
    });
    expect(checkKubeconfig(kubeconfig("https://10.0.0.1:6443"))).toEqual({ ok: true });
  });
});
