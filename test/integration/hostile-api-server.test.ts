/**
 * A broken or hostile API server must cost one cluster, not the run: lists that never end are cut
 * off after MAX_PAGES pages, and Secrets are asked for as metadata only.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterApi, MAX_PAGES, METADATA_ONLY } from "../../functions/adapters/kubernetes.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";

let url: string;
let caPem: string;
let server: Server;
const requests: { path: string; headers: IncomingHttpHeaders }[] = [];
const answer = (request: IncomingMessage, response: ServerResponse) => {
  requests.push({ path: request.url ?? "", headers: request.headers });
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
