/**
 * A record's kubeconfig reaches nothing but its API server: keys the client library would act on
 * (a token file, a program, a proxy) are refused before it reads them, and a redirect from the API
 * server is an error, never a second request.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";

const MARKER = "AWS_SECRET_ACCESS_KEY=marker-that-must-never-leave";
let url: string;
let caPem: string;
let server: Server;
let elsewhere: HttpServer;
let elsewhereHits = 0;
let apiServerHits = 0;
let markerFile: string;

beforeAll(async () => {
  const tls = await loopbackServerTls("redirecting-api-server");
  caPem = tls.ca.cert;
  elsewhere = createHttpServer((_, response) => {
    elsewhereHits++;
    response.end(MARKER);
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
  const target = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/latest/meta-data/`;
  server = createServer({ cert: tls.server.cert, key: tls.server.key }, (request, response) => {
    apiServerHits++;
    // What a hostile or compromised API server might answer: go and fetch this instead.
    response.writeHead(request.method === "PATCH" ? 307 : 302, { location: target });
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  markerFile = join(await mkdtemp(join(tmpdir(), "kubeconfig-")), "environ");
  await writeFile(markerFile, MARKER);
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
});

/** The test bed's kubeconfig for the stand-in, with `extra` merged into its user. */
function recordKubeconfig(extra: Record<string, unknown> = {}): string {
  const document = parse(kubeconfig(url, caPem, { name: "r", token: "t" })) as {
    users: { user: Record<string, unknown> }[];
  };
  Object.assign(document.users[0]?.user ?? {}, extra);
  return stringify(document);
}

describe("a record's kubeconfig", () => {
  it.each([
    [{ "token-file": "MARKER_FILE" }, "token-file"],
    [{ tokenFile: "MARKER_FILE" }, "tokenFile"],
    [{ exec: { command: "/bin/sh", args: ["-c", "cat MARKER_FILE"] } }, "exec"],
    [{ "auth-provider": { name: "oidc" } }, "auth-provider"],
    [{ as: "system:admin" }, "as"],
  ])("with %j is refused by name before the client library reads it", async (extra, key) => {
    const text = recordKubeconfig(
      JSON.parse(JSON.stringify(extra).replaceAll("MARKER_FILE", markerFile)) as Record<
        string,
        unknown
      >,
    );
    expect(text).toContain(key);
    const check = checkKubeconfig(text, { allowLocalServers: true });
    expect(check.ok).toBe(false);
    expect(!check.ok && check.error).toContain(`"${key}"`);
    const hitsBefore = apiServerHits;
    let message = "";
    try {
      await new ClusterApi(text, AbortSignal.timeout(5000)).enabledNamespaces("x");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`"${key}"`);
    expect(message).not.toContain("marker");
    expect(apiServerHits).toBe(hitsBefore);
  });

  it("is refused when a key hides in a cluster or context, or the document has extensions", () => {
    type Document = {
      clusters: { cluster: Record<string, unknown> }[];
      contexts: { context: Record<string, unknown> }[];
    } & Record<string, unknown>;
    const changed = (change: (document: Document) => void) => {
      const document = parse(recordKubeconfig()) as Document;
      change(document);
      return stringify(document);
    };
    for (const [key, change] of [
      [
        "proxy-url",
        (d: Document) =>
          Object.assign(d.clusters[0]?.cluster ?? {}, { "proxy-url": "http://127.0.0.1:1" }),
      ],
      [
        "insecure-skip-tls-verify",
        (d: Document) =>
          Object.assign(d.clusters[0]?.cluster ?? {}, { "insecure-skip-tls-verify": true }),
      ],
      [
        "as-groups",
        (d: Document) =>
          Object.assign(d.contexts[0]?.context ?? {}, { "as-groups": ["system:masters"] }),
      ],
      ["extensions", (d: Document) => Object.assign(d, { extensions: [] })],
    ] as const) {
      const check = checkKubeconfig(changed(change), { allowLocalServers: true });
      expect(check.ok, key).toBe(false);
      expect(!check.ok && check.error).toContain(`"${key}"`);
    }
    expect(checkKubeconfig(recordKubeconfig(), { allowLocalServers: true })).toEqual({ ok: true });
  });
});

describe("an API server's redirect", () => {
  it("is an error, for a read and for a PATCH, and nothing reaches the address it names", async () => {
    const api = new ClusterApi(recordKubeconfig(), AbortSignal.timeout(5000));
    await expect(api.enabledNamespaces("x")).rejects.toThrow(/redirect/i);
    await expect(
      api.annotate("a", "b", "ecr-anywhere.centml.ai/marked_for_update", "now"),
    ).rejects.toThrow(/redirect/i);
    expect(apiServerHits).toBeGreaterThanOrEqual(2);
    expect(elsewhereHits).toBe(0);
  });
});
