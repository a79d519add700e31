/**
 * A real Kubernetes control plane on loopback: etcd and kube-apiserver built from the Go module
 * proxy (scripts/build-control-plane.sh), with generated certificates, ServiceAccount token
 * signing, and RBAC authorization. Every process is torn down on stop, and on exit if a test
 * run dies first.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createWriteStream, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  generateKeyPair,
  issueCertificate,
  type PemFiles,
} from "../functions/local/tls.ts";
import { freePort, waitFor } from "./ports.ts";

const repo = join(import.meta.dirname, "..");

export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly ca: CertificateAuthority;
  /** Admin (system:masters) kubeconfig YAML, also written to `kubeconfigPath`. */
  readonly adminKubeconfig: string;
  readonly kubeconfigPath: string;
  readonly dir: string;
  /** For measuring its memory. */
  readonly apiserverPid: number | undefined;
  /** The etcd it stores in (its own, or the one it was given): other API servers can share it. */
  readonly etcdUrl: string;
  /** What the API server reports at /version, e.g. `{ major: 1, minor: 32, gitVersion: "v1.32.13" }`. */
  readonly version: { major: number; minor: number; gitVersion: string };
  stop(): Promise<void>;
}

/**
 * The Kubernetes minor the test bed runs (e.g. `1.32`): `ECR_ANYWHERE_KUBE_VERSION`, else the
 * newest one testbed/control-plane pins (the build script decides).
 */
export function chosenKubeVersion(): string | undefined {
  return process.env.ECR_ANYWHERE_KUBE_VERSION || undefined;
}

/**
 * Builds (first time only) and returns the directory with the kube-apiserver of the given minor
 * (default: `chosenKubeVersion()`) and etcd binaries.
 */
export async function controlPlaneBinaries(kubeVersion = chosenKubeVersion()): Promise<string> {
  const { stdout } = await promisify(execFile)(
    join(repo, "scripts/build-control-plane.sh"),
    kubeVersion ? [kubeVersion] : [],
    { maxBuffer: 16 * 1024 * 1024, timeout: 60 * 60_000 },
  );
  return stdout.trim().split("\n").at(-1) ?? "";
}

export interface ControlPlaneOptions {
  /**
   * Use a running etcd instead of starting one: several API servers can share it, each under its
   * own `etcdPrefix`, which is how the fleet benchmark runs a few real clusters side by side.
   */
  readonly etcdUrl?: string;
  readonly etcdPrefix?: string;
  /** More kube-apiserver flags, e.g. `--admission-control-config-file=…`. */
  readonly apiserverArgs?: readonly string[];
  /** The kube-apiserver minor, e.g. `1.32` (default: `chosenKubeVersion()`). */
  readonly kubeVersion?: string;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = await controlPlaneBinaries(options.kubeVersion);
  const dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-control-plane-"));
  const processes: ChildProcess[] = [];
  // If the test run (or demo) exits before stop(), nothing may outlive it: not the processes, not
  // the folder with the system:masters kubeconfig.
  const killAll = () => {
    for (const child of processes) killGroup(child, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", killAll);
  const pki = join(dir, "pki");
  await mkdir(pki);
  const ca = await createCertificateAuthority("ecr-anywhere-e2e-kubernetes-ca", pki);
  const serving = await issueCertificate(ca, {
    name: "apiserver",
    commonName: "kube-apiserver",
    subjectAltNames: [
      "IP:127.0.0.1",
      "DNS:localhost",
      "DNS:kubernetes",
      "DNS:kubernetes.default",
      "DNS:kubernetes.default.svc",
    ],
    usage: "server",
  });
  const admin = await issueCertificate(ca, {
    name: "admin",
    commonName: "e2e-admin",
    organizations: ["system:masters"],
    usage: "client",
  });
  const serviceAccountKeys = await generateKeyPair(pki, "service-account");

  const [etcdClientPort, etcdPeerPort, apiserverPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];

  const etcdUrl = options.etcdUrl ?? `http://127.0.0.1:${etcdClientPort}`;
  if (!options.etcdUrl)
    processes.push(
      launch(
        join(bin, "etcd"),
        [
          "--name=e2e",
          `--data-dir=${join(dir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
          `--initial-cluster=e2e=http://127.0.0.1:${etcdPeerPort}`,
          "--unsafe-no-fsync", // a throwaway test database: durability only costs time
          "--log-level=warn",
        ],
        join(dir, "etcd.log"),
      ),
    );
  const server = `https://127.0.0.1:${apiserverPort}`;
  processes.push(
    launch(
      join(bin, "kube-apiserver"),
      [
        `--etcd-servers=${etcdUrl}`,
        ...(options.etcdPrefix ? [`--etcd-prefix=${options.etcdPrefix}`] : []),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiserverPort}`,
        `--tls-cert-file=${serving.certFile}`,
        `--tls-private-key-file=${serving.keyFile}`,
        `--client-ca-file=${ca.certFile}`,
        `--service-account-key-file=${serviceAccountKeys.publicKeyFile}`,
        `--service-account-signing-key-file=${serviceAccountKeys.privateKeyFile}`,
        "--service-account-issuer=https://kubernetes.default.svc",
        "--api-audiences=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--enable-priority-and-fairness=false",
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        "--v=1",
        ...(options.apiserverArgs ?? []),
      ],
      join(dir, "kube-apiserver.log"),
    ),
  );

  const stop = async () => {
    process.removeListener("exit", killAll);
    await Promise.all(processes.reverse().map((child) => terminate(child)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => readyz(server, ca, admin), 120_000, "kube-apiserver /readyz");
  } catch (error) {
    const log = await readFile(join(dir, "kube-apiserver.log"), "utf8").catch(() => "");
    await stop();
    throw new Error(
      `${(error as Error).message}\n--- kube-apiserver log (tail) ---\n${log.slice(-4000)}`,
    );
  }
  const adminKubeconfig = kubeconfig(server, ca.cert, {
    name: "e2e-admin",
    clientCertificate: admin,
  });
  const kubeconfigPath = join(dir, "admin.kubeconfig");
  await writeFile(kubeconfigPath, adminKubeconfig, { mode: 0o600 });
  const apiserverPid = processes.at(-1)?.pid;
  const version = await serverVersion(server, ca, admin);
  return { server, ca, adminKubeconfig, kubeconfigPath, dir, apiserverPid, etcdUrl, version, stop };
}

export function kubeconfig(
  server: string,
  caPem: string,
  user: { name: string; clientCertificate?: PemFiles; token?: string },
): string {
  const credentials = user.token
    ? { token: user.token }
    : {
        "client-certificate-data": Buffer.from(user.clientCertificate?.cert ?? "").toString(
          "base64",
        ),
        "client-key-data": Buffer.from(user.clientCertificate?.key ?? "").toString("base64"),
      };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "e2e",
        cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") },
      },
    ],
    users: [{ name: user.name, user: credentials }],
    contexts: [{ name: "e2e", context: { cluster: "e2e", user: user.name } }],
    "current-context": "e2e",
  });
}

function launch(binary: string, args: string[], logFile: string): ChildProcess {
  const log = createWriteStream(logFile);
  // Its own process group, so stop() takes down anything it started too.
  const child = spawn(binary, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    killGroup(child, "SIGTERM");
  });
}

async function serverVersion(
  server: string,
  ca: CertificateAuthority,
  client: PemFiles,
): Promise<ControlPlane["version"]> {
  const body = await new Promise<string>((resolve, reject) => {
    const call = request(
      `${server}/version`,
      { ca: ca.cert, cert: client.cert, key: client.key, timeout: 5000 },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => resolve(text));
      },
    );
    call.on("error", reject);
    call.end();
  });
  const info = JSON.parse(body) as { major: string; minor: string; gitVersion: string };
  // A minor such as "32+" (some distributions) reads as 32.
  return {
    major: Number.parseInt(info.major, 10),
    minor: Number.parseInt(info.minor, 10),
    gitVersion: info.gitVersion,
  };
}

function readyz(server: string, ca: CertificateAuthority, client: PemFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const call = request(
      `${server}/readyz`,
      { ca: ca.cert, cert: client.cert, key: client.key, timeout: 2000 },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    call.on("error", () => resolve(false));
    call.end();
  });
}
