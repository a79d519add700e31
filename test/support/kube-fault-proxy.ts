/**
 * A TLS proxy in front of the real kube-apiserver that fails the requests a test chooses with an
 * API server error, and passes every other one through as it is (bearer token included, so the
 * API server authorizes the caller itself): fault injection only.
 */
import { createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { loopbackServerTls } from "../../functions/local/tls.ts";

export interface KubeFaultProxy {
  readonly url: string;
  /** PEM of the CA that signed the proxy's certificate. */
  readonly caPem: string;
  /** Requests to fail: `DELETE /apis/rbac.authorization.k8s.io/v1/clusterroles/x`. */
  fail: RegExp | undefined;
  /** Requests failed so far. */
  faults: number;
  stop(): Promise<void>;
}

export async function startKubeFaultProxy(apiServer: string, apiServerCaPem: string) {
  const tls = await loopbackServerTls("kube-fault-proxy");
  const upstream = new URL(apiServer);
  const state: { fail: RegExp | undefined; faults: number } = { fail: undefined, faults: 0 };
  const server = createServer(
    { cert: tls.server.cert, key: tls.server.key },
    (request, response) => {
      const line = `${request.method} ${request.url}`;
      if (state.fail?.test(line)) {
        state.faults++;
        request.resume();
        response.writeHead(500, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            message: `injected fault on ${request.method} ${request.url?.split("?")[0]}`,
            reason: "InternalError",
            code: 500,
          }),
        );
        return;
      }
      const forwarded = httpsRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: request.method,
          path: request.url,
          headers: { ...request.headers, host: upstream.host },
          ca: apiServerCaPem,
        },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      forwarded.on("error", () => response.destroy());
      request.pipe(forwarded);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: KubeFaultProxy = Object.assign(state, {
    url: `https://127.0.0.1:${port}`,
    caPem: tls.ca.cert,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return proxy;
}
