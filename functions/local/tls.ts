/**
 * Certificates for local runs and the test bed: a throwaway CA and the certificates it issues,
 * made with the openssl CLI (Node can verify X.509 but not create it). Never used in Lambda.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface PemFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertificateAuthority extends PemFiles {
  readonly dir: string;
}

export interface CertificateRequest {
  readonly name: string;
  readonly commonName: string;
  /** Subject organisations; Kubernetes reads them as groups (e.g. `system:masters`). */
  readonly organizations?: readonly string[];
  /** Subject alternative names, as openssl writes them: `IP:127.0.0.1`, `DNS:localhost`. */
  readonly subjectAltNames?: readonly string[];
  readonly usage: "server" | "client";
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

export async function createCertificateAuthority(
  commonName: string,
  dir?: string,
): Promise<CertificateAuthority> {
  const home = dir ?? (await mkdtemp(join(tmpdir(), "ecr-anywhere-ca-")));
  const certFile = join(home, "ca.crt");
  const keyFile = join(home, "ca.key");
  await run("openssl", [
    "req",
    "-x509",
    ...EC_KEY,
    "-days",
    "30",
    "-subj",
    `/CN=${commonName}`,
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  return { dir: home, ...(await readPem(certFile, keyFile)) };
}

export async function issueCertificate(
  ca: CertificateAuthority,
  request: CertificateRequest,
): Promise<PemFiles> {
  const file = (suffix: string) => join(ca.dir, `${request.name}.${suffix}`);
  const subject = [
    `/CN=${request.commonName}`,
    ...(request.organizations ?? []).map((o) => `/O=${o}`),
  ].join("");
  const extensions = [
    `extendedKeyUsage=${request.usage === "server" ? "serverAuth" : "clientAuth"}`,
    "keyUsage=critical,digitalSignature,keyEncipherment",
    ...(request.subjectAltNames?.length
      ? [`subjectAltName=${request.subjectAltNames.join(",")}`]
      : []),
  ];
  await writeFile(file("ext"), `${extensions.join("\n")}\n`);
  await run("openssl", [
    "req",
    ...EC_KEY,
    "-subj",
    subject,
    "-keyout",
    file("key"),
    "-out",
    file("csr"),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    file("csr"),
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    file("ext"),
    "-out",
    file("crt"),
  ]);
  return readPem(file("crt"), file("key"));
}

/** A CA and a certificate for 127.0.0.1 and localhost, the common case for loopback servers. */
export async function loopbackServerTls(
  commonName = "ecr-anywhere-local",
): Promise<{ ca: CertificateAuthority; server: PemFiles }> {
  const ca = await createCertificateAuthority(`${commonName} CA`);
  const server = await issueCertificate(ca, {
    name: "server",
    commonName: "localhost",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  return { ca, server };
}

async function readPem(certFile: string, keyFile: string): Promise<PemFiles> {
  const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  return { certFile, keyFile, cert, key };
}

/** An RSA key pair (PEM files), e.g. for signing ServiceAccount tokens. */
export async function generateKeyPair(
  dir: string,
  name: string,
): Promise<{ privateKeyFile: string; publicKeyFile: string }> {
  const privateKeyFile = join(dir, `${name}.key`);
  const publicKeyFile = join(dir, `${name}.pub`);
  await run("openssl", [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    privateKeyFile,
  ]);
  await run("openssl", ["pkey", "-in", privateKeyFile, "-pubout", "-out", publicKeyFile]);
  return { privateKeyFile, publicKeyFile };
}
