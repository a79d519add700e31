/**
 * What `preflight` and `doctor` conclude from what they read. Pure: each check turns facts into a
 * finding, and every problem carries its fix.
 */
import { LAMBDA_MIN_UNRESERVED, maxMarkConcurrency } from "../../functions/core/concurrency.ts";

export interface Finding {
  readonly check: string;
  readonly ok: boolean;
  /** What was found, one line. */
  readonly detail: string;
  /** What to do about it; present on every problem. */
  readonly fix?: string;
}

export function passed(check: string, detail: string): Finding {
  return { check, ok: true, detail };
}

export function problem(check: string, detail: string, fix: string): Finding {
  return { check, ok: false, detail, fix };
}

/**
 * How a package user deploys or redeploys the stack: the CDK CLI in the deploy app that
 * docs/deploy.md has them make (a clone's `npm run deploy` exists nowhere else).
 */
export const DEPLOY_COMMAND = "npx cdk deploy in your deploy app (docs/deploy.md)";
const REDEPLOY = `redeploy the stack: ${DEPLOY_COMMAND}`;

/** `cdk deploy` refuses a bootstrap older than this (aws-cdk-lib's DefaultStackSynthesizer). */
export const MIN_BOOTSTRAP_VERSION = 6;

export interface BootstrapFacts {
  readonly toolkitStack: string;
  readonly account: string;
  readonly region: string;
  /** The toolkit stack's status and outputs; undefined when it does not exist. */
  readonly stack:
    | { readonly status: string; readonly outputs: Readonly<Record<string, string>> }
    | undefined;
}

export function bootstrapFinding(facts: BootstrapFacts): Finding {
  const check = "CDK bootstrap";
  const fix = `npx cdk bootstrap aws://${facts.account}/${facts.region} in your deploy app (docs/deploy.md)`;
  if (facts.stack === undefined)
    return problem(
      check,
      `no stack ${facts.toolkitStack} in ${facts.account}/${facts.region}`,
      fix,
    );
  const { status, outputs } = facts.stack;
  // UPDATE_ROLLBACK_COMPLETE is a settled stack (its last update was undone), and deploys use it.
  if (!/_COMPLETE$/.test(status) || /^(ROLLBACK|DELETE)_COMPLETE$/.test(status))
    return problem(
      check,
      `stack ${facts.toolkitStack} is ${status}`,
      `${fix} (once the stack is out of ${status}; a stack in ROLLBACK_COMPLETE must be deleted first)`,
    );
  const version = Number(outputs.BootstrapVersion);
  if (!Number.isInteger(version))
    return problem(check, `stack ${facts.toolkitStack} has no BootstrapVersion output`, fix);
  if (version < MIN_BOOTSTRAP_VERSION)
    return problem(
      check,
      `bootstrap version ${version} is older than the ${MIN_BOOTSTRAP_VERSION} cdk deploy needs`,
      fix,
    );
  return passed(check, `${facts.toolkitStack} version ${version} (${status})`);
}

export interface ConcurrencySettings {
  /** The webhook's reserved concurrency; undefined: none (the default). */
  readonly reserved: number | undefined;
  readonly markConcurrency: number;
  /** Fan-out workers at once; undefined in inline mode. */
  readonly fanoutConcurrency: number | undefined;
  /**
   * The stack is already deployed: whatever it reserves now is already outside `unreserved`, so a
   * reservation is checked as a change, which preflight cannot size without the current one.
   */
  readonly stackExists?: boolean;
}

/**
 * What the settings need of the account's Lambda concurrency. A reservation R must leave the
 * account 100 unreserved, or Lambda refuses to create the function and the stack rolls back.
 * Without one, a refresh's marks and the refresher's own runs come out of the unreserved pool,
 * and must leave at least as much again there for the users' own writes (and every other
 * function of the account).
 */
export function concurrencyFinding(
  account: { readonly limit: number; readonly unreserved: number },
  settings: ConcurrencySettings,
): Finding {
  const check = "Lambda concurrency";
  const quotaFix = (needed: number) =>
    `ask for a higher "Concurrent executions" quota (Service Quotas, AWS Lambda, L-B99A9384), at least ${needed}`;
  const seen = `account limit ${account.limit}, unreserved ${account.unreserved}`;
  if (settings.reserved !== undefined) {
    const left = account.unreserved - settings.reserved;
    if (left < LAMBDA_MIN_UNRESERVED && settings.stackExists)
      return passed(
        check,
        `${seen}: the stack exists, so its current reservation is already outside the unreserved ${account.unreserved}; raising it by D needs ${account.unreserved} - D >= ${LAMBDA_MIN_UNRESERVED}`,
      );
    if (left < LAMBDA_MIN_UNRESERVED)
      return problem(
        check,
        `${seen}: reserving ${settings.reserved} for the webhook would leave ${left} unreserved, and Lambda keeps at least ${LAMBDA_MIN_UNRESERVED}: the deploy would fail and roll back`,
        `${quotaFix(account.limit + LAMBDA_MIN_UNRESERVED - left)}, or leave webhookReservedConcurrency unset`,
      );
    if (settings.markConcurrency > maxMarkConcurrency(settings.reserved))
      return problem(
        check,
        `refresherMarkConcurrency ${settings.markConcurrency} is more than half of the reservation ${settings.reserved}`,
        `set refresherMarkConcurrency to at most ${maxMarkConcurrency(settings.reserved)}`,
      );
    return passed(check, `${seen}: the reservation of ${settings.reserved} leaves ${left}`);
  }
  const refreshers = 1 + (settings.fanoutConcurrency ?? 0);
  const refresh = refreshers + settings.markConcurrency;
  // Half the pool at most for a refresh: the rest for the users' writes and other functions.
  const needed = 2 * refresh;
  if (account.unreserved < needed)
    return problem(
      check,
      `${seen}: a refresh takes up to ${refresh} (${refreshers} refresher run(s) and ${settings.markConcurrency} marks), more than half of the unreserved pool, so it could throttle the clusters' own Secret writes`,
      `${quotaFix(account.limit - account.unreserved + needed)}, or lower refresherMarkConcurrency to at most ${Math.max(1, Math.floor(account.unreserved / 2) - refreshers)}`,
    );
  return passed(check, `${seen}: no reservation; a refresh takes at most ${refresh}`);
}

/**
 * The stack to deploy, as `cdk deploy` will meet it: none (created), settled (updated), failed on
 * creation (ROLLBACK_COMPLETE: the CDK CLI deletes it and creates it again, so its retained
 * record tables are left behind then), or busy. `exists` says whether its tables are its own.
 */
export function targetStackFinding(
  name: string,
  status: string | undefined,
): { readonly finding: Finding; readonly exists: boolean } {
  const check = `stack ${name}`;
  if (status === undefined)
    return { finding: passed(check, "not deployed yet: cdk deploy creates it"), exists: false };
  if (status === "ROLLBACK_COMPLETE")
    return {
      finding: passed(
        check,
        "ROLLBACK_COMPLETE (its creation failed): cdk deploy deletes it and creates it again",
      ),
      exists: false,
    };
  if (/_IN_PROGRESS$/.test(status))
    return {
      finding: problem(check, `is ${status}`, "wait until it settles, then run preflight again"),
      exists: true,
    };
  return { finding: passed(check, `${status}: cdk deploy updates it`), exists: true };
}

export interface RecordTableFacts {
  readonly table: string;
  /** Undefined when the table does not exist. */
  readonly status: string | undefined;
  /** The stack being deployed exists already (an upgrade): its own tables are expected. */
  readonly stackExists: boolean;
}

/** Cluster record tables a new stack would create must not exist yet (`cdk destroy` keeps them). */
export function recordTableFinding(facts: RecordTableFacts): Finding {
  const check = `DynamoDB table ${facts.table}`;
  if (facts.status === undefined) return passed(check, "DynamoDB answers; the name is free");
  if (facts.stackExists) return passed(check, `${facts.status}, the stack's own (an upgrade)`);
  return problem(
    check,
    "exists, but the stack does not: a new stack cannot create it (kept by an earlier stack's cdk destroy?)",
    "choose another records name (ecr-anywhere:records), or delete the table once its records are no longer needed",
  );
}

export type HealthProbe =
  | { readonly status: number; readonly body: string }
  | { readonly failed: string };

interface HealthBody {
  readonly service?: unknown;
  readonly version?: unknown;
  readonly authorizationHeaderReceived?: unknown;
}

function healthBody(body: string): HealthBody | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null ? (parsed as HealthBody) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The health path called plainly (as a path-mode cluster calls, no header) and with an
 * `Authorization` header (as a header-mode cluster calls): the second tells whether the function
 * URL hands the header on, which header mode depends on.
 */
export function healthFinding(form: "path" | "header", probe: HealthProbe): Finding {
  const check = `webhook health (${form} form)`;
  const deployFix = `check the stack's WebhookUrl output and that the deployed webhook has a health path (ecr-anywhere 0.1.0 or later): ${REDEPLOY}`;
  if ("failed" in probe)
    return problem(check, `cannot reach the function URL: ${probe.failed}`, deployFix);
  const body = healthBody(probe.body);
  if (probe.status !== 200 || body?.service !== "ecr-anywhere-webhook")
    return problem(
      check,
      `the function URL answered HTTP ${probe.status}, not the webhook's health`,
      deployFix,
    );
  const version = String(body.version);
  const received = body.authorizationHeaderReceived === true;
  if (form === "path")
    return received
      ? problem(
          check,
          `version ${version} says a header arrived though none was sent`,
          "check for a proxy between this machine and the function URL that adds an Authorization header",
        )
      : passed(check, `version ${version}`);
  return received
    ? passed(
        check,
        `version ${version}; the Authorization header reached the function: header mode works`,
      )
    : problem(
        check,
        `version ${version}; the Authorization header did not reach the function: header mode cannot authenticate`,
        "onboard clusters with --webhook-auth url (the default: the token in the URL path), and onboard header-mode clusters again with it",
      );
}

export function alarmsFinding(
  stackName: string,
  states: readonly { name: string; state: string }[],
): Finding {
  const check = "alarms";
  if (states.length === 0)
    return problem(
      check,
      `no alarms named ${stackName}-<logical id>-<suffix> in CloudWatch`,
      `check --stack and --region; ${REDEPLOY}`,
    );
  const firing = states.filter((alarm) => alarm.state === "ALARM").map((alarm) => alarm.name);
  if (firing.length > 0)
    return problem(
      check,
      `${firing.length} of ${states.length} in ALARM: ${firing.join(", ")}`,
      "see each alarm's description in CloudWatch for what it means and what to do; the webhook's and refresher's logs say which cluster",
    );
  const waiting = states.filter((alarm) => alarm.state === "INSUFFICIENT_DATA").length;
  return passed(
    check,
    `${states.length} alarms, none in ALARM${waiting > 0 ? ` (${waiting} without data yet: normal until their metrics are published)` : ""}`,
  );
}

export function tokenTableFinding(
  table: string | undefined,
  state: { readonly status: string; readonly encrypted: boolean } | undefined,
): Finding {
  const check = "shared token table";
  if (table === undefined)
    return problem(check, "the stack has no token table (a WebhookTokenStore table)", REDEPLOY);
  if (state === undefined) return problem(check, `${table} does not exist`, REDEPLOY);
  if (state.status !== "ACTIVE" || !state.encrypted)
    return problem(
      check,
      `${table} is ${state.status}${state.encrypted ? "" : ", not encrypted with the stack's key"}`,
      `wait for ACTIVE, or ${REDEPLOY}`,
    );
  return passed(check, `${table} ACTIVE, encrypted with the stack's key`);
}
