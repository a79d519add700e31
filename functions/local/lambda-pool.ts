/**
 * Lambda's concurrency model on this machine: a pool of isolated execution environments (worker
 * threads, each loading the handler itself), one request at a time each. A request that finds no
 * idle environment starts a new, cold one, up to the reserved concurrency; past it the answer is
 * Lambda's throttle, a 429. Idle environments are reused warm and reclaimed after a while.
 *
 * A function URL also refuses more than 10 x the reserved concurrency requests per second (AWS
 * documents this for function URLs): modelled as a one-second sliding window, answered with the
 * same 429.
 *
 * The throttle carries no `Retry-After`: AWS documents `retryAfterSeconds` (the header) for the
 * Invoke API's TooManyRequestsException, not for function URLs, so the worst case is modelled.
 * kube-apiserver's client retries a 429 only with that header, so a throttled admission fails.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { FunctionUrlEvent, FunctionUrlResult } from "../webhook/http.ts";
import type { EnvironmentMessage, EnvironmentRequest } from "./lambda-environment.ts";

export interface LambdaPoolOptions {
  /** The handler module (a bundle, or a source module on Node 24) exporting `handler`. */
  readonly module: string;
  /** The function's environment variables, on top of this process's. */
  readonly env?: Readonly<Record<string, string>>;
  /** Reserved concurrency: the most environments at once. */
  readonly reservedConcurrency: number;
  /** Requests per second allowed per unit of reserved concurrency. @default 10 (function URLs) */
  readonly requestsPerSecondPerConcurrency?: number;
  /** The clock of the request-rate window (tests pin it). @default performance.now */
  readonly now?: () => number;
  /** An environment idle this long is reclaimed (Lambda: minutes, unspecified). */
  readonly idleMs?: number;
  /** Where environments' stdout and stderr go (logs, EMF); default: this process's. */
  readonly output?: "inherit" | "ignore";
}

export interface LambdaPoolStats {
  readonly environmentsStarted: number;
  readonly invocations: number;
  /** Every 429: no environment free, or the request rate past its limit. */
  readonly throttles: number;
  /** The 429s the request rate caused. */
  readonly rateThrottles: number;
  /** Environments alive now, and the most that were busy at once. */
  readonly live: number;
  readonly peakConcurrency: number;
  readonly initMs: readonly number[];
}

/** What a function URL answers when the function is throttled. */
export const THROTTLED: FunctionUrlResult = {
  statusCode: 429,
  headers: { "content-type": "application/json", "x-amzn-errortype": "TooManyRequestsException" },
  body: JSON.stringify({ Message: "Rate Exceeded." }),
};

/** What a function URL answers when the function failed (threw, or its environment died). */
const FUNCTION_ERROR: FunctionUrlResult = {
  statusCode: 502,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ Message: "Internal Server Error" }),
};

interface Environment {
  readonly worker: Worker;
  idleTimer?: NodeJS.Timeout;
  pending?: { id: number; settle: (result: FunctionUrlResult) => void };
}

const ENVIRONMENT_SCRIPT = new URL("./lambda-environment.ts", import.meta.url);

export class LambdaPool {
  readonly #options: LambdaPoolOptions;
  readonly #moduleUrl: string;
  readonly #idle: Environment[] = [];
  readonly #all = new Set<Environment>();
  /** Slots taken by environments starting or alive: the reserved-concurrency count. */
  #slots = 0;
  #busy = 0;
  #nextId = 0;
  #closed = false;
  #stats = {
    environmentsStarted: 0,
    invocations: 0,
    throttles: 0,
    rateThrottles: 0,
    peakConcurrency: 0,
  };
  /** When the requests of the last second arrived, oldest first. */
  readonly #recent: number[] = [];
  readonly #initMs: number[] = [];

  constructor(options: LambdaPoolOptions) {
    if (!(options.reservedConcurrency >= 1))
      throw new Error("reservedConcurrency must be at least 1");
    this.#options = options;
    this.#moduleUrl = pathToFileURL(resolve(options.module)).href;
  }

  get stats(): LambdaPoolStats {
    return { ...this.#stats, live: this.#all.size, initMs: [...this.#initMs] };
  }

  /** A function-URL handler: invokes an environment, or answers Lambda's 429. */
  readonly handler = async (
    event: FunctionUrlEvent,
    context: { awsRequestId: string },
  ): Promise<FunctionUrlResult> => {
    if (!this.#withinRate(this.#options.now?.() ?? performance.now())) {
      this.#stats.throttles++;
      this.#stats.rateThrottles++;
      return THROTTLED;
    }
    const environment = this.#idle.pop() ?? (await this.#startIfAllowed());
    if (!environment) {
      this.#stats.throttles++;
      return THROTTLED;
    }
    clearTimeout(environment.idleTimer);
    this.#stats.invocations++;
    this.#busy++;
    this.#stats.peakConcurrency = Math.max(this.#stats.peakConcurrency, this.#busy);
    try {
      return await new Promise<FunctionUrlResult>((settle) => {
        const id = ++this.#nextId;
        environment.pending = { id, settle };
        const request: EnvironmentRequest = { id, event, context };
        environment.worker.postMessage(request);
      });
    } finally {
      this.#busy--;
      environment.pending = undefined;
      if (this.#all.has(environment)) this.#release(environment);
    }
  };

  /** Ends every environment (the next requests start cold ones): a new deployment, in effect. */
  async recycle(): Promise<void> {
    const environments = [...this.#all];
    this.#idle.length = 0;
    await Promise.all(environments.map((environment) => this.#end(environment)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.recycle();
  }

  /** Counts the request in the one-second window; false when the window is full. */
  #withinRate(nowMs: number): boolean {
    const limit =
      this.#options.reservedConcurrency * (this.#options.requestsPerSecondPerConcurrency ?? 10);
    while ((this.#recent[0] ?? nowMs) <= nowMs - 1000) this.#recent.shift();
    if (this.#recent.length >= limit) return false;
    this.#recent.push(nowMs);
    return true;
  }

  async #startIfAllowed(): Promise<Environment | undefined> {
    if (this.#closed || this.#slots >= this.#options.reservedConcurrency) return undefined;
    // The slot is held until the worker exits (see #start), however its init ends.
    this.#slots++;
    return this.#start();
  }

  #start(): Promise<Environment> {
    this.#stats.environmentsStarted++;
    const quiet = this.#options.output === "ignore";
    const worker = new Worker(ENVIRONMENT_SCRIPT, {
      workerData: { moduleUrl: this.#moduleUrl },
      env: { ...process.env, ...this.#options.env },
      stdout: quiet,
      stderr: quiet,
    });
    if (quiet) {
      worker.stdout.resume();
      worker.stderr.resume();
    }
    const environment: Environment = { worker };
    return new Promise((resolveReady, rejectReady) => {
      worker.on("message", (message: EnvironmentMessage) => {
        switch (message.type) {
          case "ready":
            this.#initMs.push(message.initMs);
            this.#all.add(environment);
            return resolveReady(environment);
          case "init-error":
            return rejectReady(new Error(`the function failed to initialise: ${message.message}`));
          case "result":
            if (environment.pending?.id === message.id)
              environment.pending.settle(message.result as FunctionUrlResult);
            return;
          case "error":
            if (environment.pending?.id === message.id) environment.pending.settle(FUNCTION_ERROR);
        }
      });
      worker.once("exit", () => {
        // A dead environment frees its slot; an invocation it held fails as Lambda's would.
        this.#slots--;
        this.#all.delete(environment);
        const at = this.#idle.indexOf(environment);
        if (at >= 0) this.#idle.splice(at, 1);
        environment.pending?.settle(FUNCTION_ERROR);
        rejectReady(new Error("the execution environment exited during init"));
      });
    });
  }

  #release(environment: Environment): void {
    this.#idle.push(environment);
    if (this.#options.idleMs !== undefined) {
      environment.idleTimer = setTimeout(() => {
        const at = this.#idle.indexOf(environment);
        if (at >= 0) {
          this.#idle.splice(at, 1);
          void this.#end(environment);
        }
      }, this.#options.idleMs);
      environment.idleTimer.unref();
    }
  }

  async #end(environment: Environment): Promise<void> {
    clearTimeout(environment.idleTimer);
    await environment.worker.terminate();
  }
}
