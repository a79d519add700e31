/**
 * The HTTP client for API servers named by a record or an operator's kubeconfig: the library's own
 * fetch, except that a redirect is an error. The Kubernetes API never redirects, and following one
 * would take the request (a PATCH body, a bearer token's reach) to whatever address the answer
 * names: loopback, a metadata service, plain http.
 */
import {
  type Configuration,
  createConfiguration,
  type HttpLibrary,
  type KubeConfig,
  Observable,
  type RequestContext,
  ResponseContext,
  ServerConfiguration,
} from "@kubernetes/client-node";
import { fetch } from "undici";

export class NoRedirectHttpLibrary implements HttpLibrary {
  send(request: RequestContext): Observable<ResponseContext> {
    const response = fetch(request.getUrl(), {
      method: request.getHttpMethod().toString(),
      body: request.getBody(),
      headers: request.getHeaders(),
      signal: request.getSignal() ?? null,
      dispatcher: request.getDispatcher(),
      redirect: "error",
    }).then((answer) => {
      const headers: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        headers[name] = value;
      });
      return new ResponseContext(answer.status, headers, {
        text: () => answer.text(),
        binary: async () => Buffer.from(await answer.arrayBuffer()),
        stream: () => answer.body,
      });
    });
    return new Observable(response);
  }
}

/**
 * `config.makeApiClient(Api)`, with the no-redirect client: for kubeconfigs the client library
 * loads itself (an operator's own, which may use exec plugins), so only the transport changes.
 */
export function makeNoRedirectClient<T>(
  config: KubeConfig,
  Api: new (configuration: Configuration) => T,
): T {
  const server = config.getCurrentCluster()?.server;
  if (!server) throw new Error("the kubeconfig has no current cluster");
  return new Api(
    createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: config },
      httpApi: new NoRedirectHttpLibrary(),
    }),
  );
}
