/**
 * Onboarding's check of the address the refresher will use for the API server: the one in the
 * record, `--api-server-url` or else the operator's kubeconfig's. Pure: host names are not
 * resolved, since a name that resolves to a private address on the operator's network may resolve
 * to a public one from AWS (split-horizon DNS), and the other way round.
 */
import { type RefresherNetworkMode, refresherRouteProblem } from "../../functions/core/network.ts";

export interface ApiServerRoute {
  /** The server of the operator's kubeconfig (its current context). */
  readonly kubeconfigServer: string;
  /** `--api-server-url`: the address Lambda will use instead. */
  readonly apiServerUrl?: string | undefined;
  /** The stack's `RefresherNetwork`. */
  readonly network: RefresherNetworkMode;
  /** The local test bed's allowance: its API server is on loopback, which no real cluster's is. */
  readonly localTestBed: boolean;
}

/** Why onboarding refuses the refresher's route to the API server, in one line, or undefined. */
export function apiServerRouteProblem(route: ApiServerRoute): string | undefined {
  if (route.localTestBed) return undefined;
  if (route.apiServerUrl !== undefined) {
    const problem = refresherRouteProblem(route.apiServerUrl, route.network);
    return problem && `--api-server-url: ${problem} (docs/network.md)`;
  }
  const problem = refresherRouteProblem(route.kubeconfigServer, route.network);
  return (
    problem &&
    `the kubeconfig's API server ${problem}; pass --api-server-url with the address the refresher will use (docs/network.md)`
  );
}
