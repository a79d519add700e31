/**
 * A broken or hostile API server must cost one cluster, not the run: lists that never end are cut
 * off after MAX_PAGES pages, bodies past MAX_RESPONSE_BYTES (or a cluster's answers past
 * MAX_CLUSTER_BYTES) are abandoned mid-stream, and Secrets are asked for as metadata only.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClusterApi,
  MAX_CLUSTER_BYTES,
  MAX_PAGES,
  MAX_RESPONSE_BYTES,
  METADATA_ONLY,
} from "../../functions/adapters/kubernetes.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";

let url: string;
let caPem: string;
let server: Server;
const requests: { path: string; headers: IncomingHttpHeaders }[] = [];
let endlessBytesSent = 0;
const answer = (request: IncomingMessage, response: ServerResponse) => {
  requests.push({ path: request.url ?? "", headers: request.headers });
  if (request.url?.includes("/namespaces/endless/")) {
    // A body that never ends: a JSON list whose items keep coming, as fast as it is read.
    response.writeHead(200, { "content-type": "application/json" });
    response.write('{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[');
    const item = `${JSON.stringify({ metadata: { name: "x".repeat(200) } })},`;
    const chunk = item.repeat(5000);
    const pump = () => {
      while (!response.destroyed && response.write(chunk)) endlessBytesSent += chunk.length;
      if (!response.destroyed) response.once("drain", pump);
    };
    response.on("close", () => response.removeAllListeners("drain"));
    pump();
    return;
  }
  if (request.url?.includes("/namespaces/big-")) {
    // Pages just under the per-answer limit: only the per-cluster budget can stop them.
    response.writeHead(200, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        kind: "SecretList",
        apiVersion: "v1",
        metadata: {},
        items: [{ metadata: { name: "big", annotations: { pad: "p".repeat(15 * 1024 * 1024) } } }],
      }),
    );
    return;
  }
  // Every page promises another.
  const kind = request.url?.includes("/secrets") ? "SecretList" : "NamespaceList";
  response.writeHead(200, { "content-type": "application/json" });
  response.end(
    JSON.stringify({ kind, apiVersion: "v1", metadata: { continue: "more" }, items: [] }),
  );
};

beforeAll(async () => {
  const tls = await loopbackServerTls("hostile-api-server");
  caPem = tls.ca.cert;
  server = createServer({ cert: tls.server.cert, key: tls.server.key }, answer);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("an API server whose answers never end or are too big", () => {
  it("is given up on once one answer passes MAX_RESPONSE_BYTES, reading no more than that", async () => {
    const api = new ClusterApi(
      kubeconfig(url, caPem, { name: "refresher", token: "t" }),
      AbortSignal.timeout(60_000),
    );
    const started = process.memoryUsage().rss;
    await expect(api.managedSecrets("endless", "ecr-anywhere.centml.ai/managed")).rejects.toThrow(
      /answer exceeded 16 MiB; giving up on this cluster/,
    );
    // The stream was cancelled: the server stopped sending soon after the limit.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(endlessBytesSent).toBeLessThan(MAX_RESPONSE_BYTES * 4);
    expect(process.memoryUsage().rss - started).toBeLessThan(256 * 1024 * 1024);
  });

  it("is given up on once its answers in one run pass MAX_CLUSTER_BYTES", async () => {
    const api = new ClusterApi(
      kubeconfig(url, caPem, { name: "refresher", token: "t" }),
      AbortSignal.timeout(60_000),
    );
    const pages = Math.ceil(MAX_CLUSTER_BYTES / (15 * 1024 * 1024));
    for (let page = 0; page < pages - 1; page++)
      await api.managedSecrets(`big-${page}`, "ecr-anywhere.centml.ai/managed");
    await expect(api.managedSecrets("big-last", "ecr-anywhere.centml.ai/managed")).rejects.toThrow(
      /answers exceeded 64 MiB in one run; giving up on it/,
    );
  });
});

describe("an API server that never stops paging", () => {
  it("is given up on after MAX_PAGES pages, for Secrets and for namespaces alike", async () => {
    const api = new ClusterApi(
      kubeconfig(url, caPem, { name: "refresher", token: "t" }),
      AbortSignal.timeout(30_000),
    );
    requests.length = 0;
    await expect(api.managedSecrets("apps", "ecr-anywhere.centml.ai/managed")).rejects.toThrow(
      /kept answering with more pages \(over 200\)/,
    );
    expect(requests).toHaveLength(MAX_PAGES);
    expect(requests[0]?.headers.accept).toBe(METADATA_ONLY);

    requests.length = 0;
    await expect(api.enabledNamespaces("ecr-anywhere.centml.ai/namespace")).rejects.toThrow(
      /more pages/,
    );
    expect(requests).toHaveLength(MAX_PAGES);
  });
});
