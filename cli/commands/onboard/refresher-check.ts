/**
 * Onboard's last check: the deployed refresher refreshes this one cluster, so the path from AWS
 * (Lambda's addresses, the API server's firewall or allow-list) is proven before onboard says
 * done, not at the first scheduled run. The round trip before it ran from the operator's machine.
 */
import type { Factory } from "../../factory.ts";
import { need, Problem, type Step } from "../../ui.ts";
import type { OnboardOptions, OnboardState } from "./target.ts";

/** Onboard's last step, after the round trip. */
export function refresherCheckStep(
  options: OnboardOptions,
  factory: Factory,
  title: string,
): Step<OnboardState> {
  return {
    title,
    run: (state) => checkRefresher(state, options, factory),
  };
}

async function checkRefresher(
  state: OnboardState,
  options: OnboardOptions,
  factory: Factory,
): Promise<string> {
  if (options.dryRun) return "skipped (dry run)";
  const functionName = need(state.endpoints).refresherFunction;
  if (functionName === undefined) return "skipped (--skip-refresher-check)";
  const report = await factory.refreshOneCluster(functionName, options.clusterId);
  const server = options.apiServerUrl ?? need(state.cluster).server;
  if (!report.ok)
    throw new Problem(
      `the deployed refresher (${functionName}) could not refresh cluster ${options.clusterId} at ${server}: ${report.problems.join("; ")}. The cluster is set up and the round trip from here works: when the refresher cannot connect, the path from AWS to the API server is what fails (allow the refresher's addresses on the API server's port, or route it: see docs/network.md); then run onboard again, which changes nothing that is already right`,
    );
  return `it reached ${server}: ${report.secretsManaged} managed Secret(s), ${report.secretsStale} stale, ${report.secretsRefreshed} refreshed`;
}
