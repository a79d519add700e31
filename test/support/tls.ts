/** A throwaway CA and a loopback serving certificate, made with the openssl CLI. */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface LoopbackTls {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export async function makeLoopbackTls(commonName = "ecr-anywhere-test"): Promise<LoopbackTls> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-anywhere-tls-"));
  const file = (name: string) => join(dir, name);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${commonName} CA`,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.crt"),
  ]);
  await writeFile(
    file("san.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.crt"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    file("san.cnf"),
    "-out",
    file("server.crt"),
  ]);
  const [ca, cert, key] = await Promise.all(
    ["ca.crt", "server.crt", "server.key"].map((name) => readFile(file(name), "utf8")),
  );
  return {
    dir,
    caFile: file("ca.crt"),
    certFile: file("server.crt"),
    keyFile: file("server.key"),
    ca: ca ?? "",
    cert: cert ?? "",
    key: key ?? "",
  };
}
